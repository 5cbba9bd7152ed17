import { BigQuery, type BigQueryOptions } from '@google-cloud/bigquery';
import { BackendUnavailableError } from '../errors.js';
import { accessTokenAuth } from '../google-auth.js';
import { queryRows, startJob } from './bigquery-rows.js';
import {
  DROP_REASONS,
  type DropReason,
  type MappingTable,
  mappingQueryParams,
  mappingSnapshotQuery,
} from './mapping-query.js';
import type { MappingDryRun, MappingRow, MappingSource, MappingWindow } from './mapping-source.js';

/** The mapping table, the window to read and how to query it. */
export interface BigQueryMappingOptions extends MappingTable {
  /** Only partitions this recent are considered "latest" (bounds the MAX() scan). */
  readonly lookbackDays: number;
  /** How many daily partitions, ending at the latest, make up the snapshot (1: latest only). */
  readonly windowDays: number;
  readonly projectId?: string | undefined;
  readonly location?: string | undefined;
  readonly jobTimeoutMs: number;
  /** Rows per result page: bounds the memory the job holds (two pages at most). */
  readonly pageSize: number;
  /** A bearer token instead of Application Default Credentials. */
  readonly accessToken?: string | undefined;
}

/** Reads the mapping window with one BigQuery query (see mappingSnapshotQuery), page by page. */
export class BigQueryMappingSource implements MappingSource {
  readonly description: string;
  private client: BigQuery | undefined;

  constructor(
    private readonly options: BigQueryMappingOptions,
    client?: BigQuery,
  ) {
    this.description = `bigquery ${options.table}`;
    this.client = client;
  }

  async *rows(signal: AbortSignal): AsyncIterable<MappingRow> {
    this.client ??= new BigQuery(this.clientOptions());
    const rows = queryRows(
      this.client,
      this.queryOptions(),
      this.options.pageSize,
      signal,
      this.options.table,
    );
    for await (const row of rows) yield toMappingRow(row);
  }

  async dryRun(signal: AbortSignal): Promise<MappingDryRun> {
    this.client ??= new BigQuery(this.clientOptions());
    const query = { ...this.queryOptions(), dryRun: true };
    const job = await startJob(this.client, query, signal, this.options.table);
    const statistics = (job.metadata as { statistics?: Record<string, unknown> }).statistics ?? {};
    const stats = (statistics.query ?? {}) as { referencedTables?: unknown };
    const tables = Array.isArray(stats.referencedTables) ? stats.referencedTables : [];
    return {
      totalBytesProcessed: Number(statistics.totalBytesProcessed ?? 0),
      referencedTables: tables.map(
        (t: { projectId?: string; datasetId?: string; tableId?: string }) =>
          [t.projectId, t.datasetId, t.tableId].join('.'),
      ),
    };
  }

  async close(): Promise<void> {}

  private queryOptions() {
    return {
      query: mappingSnapshotQuery(this.options),
      ...mappingQueryParams(this.options.lookbackDays, this.options.windowDays),
      useLegacySql: false,
      location: this.options.location,
      jobTimeoutMs: this.options.jobTimeoutMs,
    };
  }

  private clientOptions(): BigQueryOptions {
    return {
      ...(this.options.projectId ? { projectId: this.options.projectId } : {}),
      ...(this.options.location ? { location: this.options.location } : {}),
      userAgent: 'profile-api-snapshot-mapping',
      ...accessTokenAuth(this.options.accessToken),
    };
  }
}

const REASONS: ReadonlySet<string> = new Set(DROP_REASONS);

function toMappingRow(row: unknown): MappingRow {
  const r = row as {
    first_partition?: unknown;
    last_partition?: unknown;
    ids?: unknown;
    reason?: unknown;
    row_count?: unknown;
  };
  if (typeof r.first_partition !== 'string' || typeof r.last_partition !== 'string') {
    throw shapeError();
  }
  const window: MappingWindow = { first: r.first_partition, last: r.last_partition };
  if (r.reason !== null && r.reason !== undefined) {
    if (typeof r.reason !== 'string' || !REASONS.has(r.reason)) throw shapeError();
    return { kind: 'dropped', window, reason: r.reason as DropReason, rows: Number(r.row_count) };
  }
  if (!Array.isArray(r.ids)) throw shapeError();
  const ids: { id: string; type: string }[] = [];
  for (const entry of r.ids as { id?: unknown; type?: unknown }[]) {
    ids.push({ id: String(entry?.id ?? ''), type: String(entry?.type ?? '') });
  }
  return { kind: 'person', window, ids };
}

function shapeError(): BackendUnavailableError {
  return new BackendUnavailableError(
    'bigquery',
    'the mapping query returned rows of an unexpected shape',
  );
}
