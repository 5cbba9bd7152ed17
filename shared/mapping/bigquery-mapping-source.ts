import { BigQuery, type BigQueryOptions, type Job } from '@google-cloud/bigquery';
import { untilAborted } from '../deadline.js';
import { BackendUnavailableError, InvalidQueryError } from '../errors.js';
import { accessTokenAuth } from '../google-auth.js';
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
    const job = await this.startQuery(signal);
    // Pages are fetched one ahead: the next request is in flight while this page's rows are
    // consumed, and at most two pages are ever held (page size bounds the memory).
    type Page = [rows: unknown[], next: Record<string, unknown> | null | undefined];
    const fetchPage = (query: Record<string, unknown>): Promise<Page> => {
      const page = job.getQueryResults({
        ...query,
        autoPaginate: false,
      }) as Promise<unknown> as Promise<Page>;
      page.catch(() => undefined); // awaited below, or abandoned when the consumer stops
      return page;
    };
    let pending: Promise<Page> | undefined = fetchPage({ maxResults: this.options.pageSize });
    try {
      while (pending) {
        // The client takes no signal: a page that never comes must not hold the job.
        const page: Page = await untilAborted(pending, signal);
        const [rows, nextQuery] = page;
        pending = nextQuery ? fetchPage(nextQuery) : undefined;
        for (const row of rows) yield toMappingRow(row);
      }
    } catch (err) {
      if (!signal.aborted && err instanceof BackendUnavailableError) throw err;
      // Best effort: a job nobody reads any more should not keep running (and billing).
      job.cancel().catch(() => undefined);
      if (signal.aborted) throw signal.reason;
      throw new BackendUnavailableError(
        'bigquery',
        `reading results of ${this.description} failed`,
        { cause: err },
      );
    }
  }

  async dryRun(signal: AbortSignal): Promise<MappingDryRun> {
    this.client ??= new BigQuery(this.clientOptions());
    let job: Job;
    try {
      [job] = await untilAborted(
        this.client.createQueryJob({ ...this.queryOptions(), dryRun: true }),
        signal,
      );
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw this.startError(err);
    }
    const statistics = (job.metadata as { statistics?: Record<string, unknown> }).statistics ?? {};
    const query = (statistics.query ?? {}) as { referencedTables?: unknown };
    const tables = Array.isArray(query.referencedTables) ? query.referencedTables : [];
    return {
      totalBytesProcessed: Number(statistics.totalBytesProcessed ?? 0),
      referencedTables: tables.map(
        (t: { projectId?: string; datasetId?: string; tableId?: string }) =>
          [t.projectId, t.datasetId, t.tableId].join('.'),
      ),
    };
  }

  async close(): Promise<void> {}

  private async startQuery(signal: AbortSignal): Promise<Job> {
    this.client ??= new BigQuery(this.clientOptions());
    try {
      const [job] = await untilAborted(this.client.createQueryJob(this.queryOptions()), signal);
      return job;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw this.startError(err);
    }
  }

  private queryOptions() {
    return {
      query: mappingSnapshotQuery(this.options),
      ...mappingQueryParams(this.options.lookbackDays, this.options.windowDays),
      useLegacySql: false,
      location: this.options.location,
      jobTimeoutMs: this.options.jobTimeoutMs,
    };
  }

  /** A query BigQuery rejects as written is a configuration error; anything else may pass. */
  private startError(err: unknown): Error {
    const status = (err as { code?: unknown }).code;
    if (status === 400 || status === 404) {
      const message = (err as { message?: unknown }).message;
      return new InvalidQueryError(
        `BigQuery rejected the mapping query on ${this.options.table}: ${String(message)}`,
        { cause: err },
      );
    }
    return new BackendUnavailableError(
      'bigquery',
      `starting the query on ${this.description} failed`,
      {
        cause: err,
      },
    );
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
