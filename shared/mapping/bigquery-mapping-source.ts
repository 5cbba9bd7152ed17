import type { BigQuery } from '@google-cloud/bigquery';
import {
  type BigQueryJobOptions,
  lazyBigQuery,
  parseDropped,
  queryCommon,
  queryRows,
  shapeError,
  startJob,
} from './bigquery-rows.js';
import { type MappingTable, mappingQueryParams, mappingSnapshotQuery } from './mapping-query.js';
import type { MappingDryRun, MappingRow, MappingSource, MappingWindow } from './mapping-source.js';

/** The mapping table, the window to read and how to query it. */
export interface BigQueryMappingOptions extends MappingTable, BigQueryJobOptions {
  /** Only partitions this recent are considered "latest" (bounds the MAX() scan). */
  readonly lookbackDays: number;
  /** How many daily partitions, ending at the latest, make up the snapshot (1: latest only). */
  readonly windowDays: number;
  /** Rows per result page: bounds the memory the job holds (two pages at most). */
  readonly pageSize: number;
}

/** Reads the mapping window with one BigQuery query (see mappingSnapshotQuery), page by page. */
export class BigQueryMappingSource implements MappingSource {
  readonly description: string;
  private readonly bigquery: () => BigQuery;

  constructor(
    private readonly options: BigQueryMappingOptions,
    client?: BigQuery,
  ) {
    this.description = `bigquery ${options.table}`;
    this.bigquery = lazyBigQuery(options, 'profile-api-snapshot-mapping', client);
  }

  async *rows(signal: AbortSignal): AsyncIterable<MappingRow> {
    const rows = queryRows(
      this.bigquery(),
      this.queryOptions(),
      this.options.pageSize,
      signal,
      this.options.table,
    );
    for await (const row of rows) yield toMappingRow(row);
  }

  async dryRun(signal: AbortSignal): Promise<MappingDryRun> {
    const query = { ...this.queryOptions(), dryRun: true };
    const job = await startJob(this.bigquery(), query, signal, this.options.table);
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
      ...queryCommon(this.options),
    };
  }
}

function toMappingRow(row: unknown): MappingRow {
  const r = row as {
    first_partition?: unknown;
    last_partition?: unknown;
    ids?: unknown;
    reason?: unknown;
    row_count?: unknown;
  };
  if (typeof r.first_partition !== 'string' || typeof r.last_partition !== 'string') {
    throw shapeError('mapping');
  }
  const window: MappingWindow = { first: r.first_partition, last: r.last_partition };
  const dropped = parseDropped(r, 'mapping');
  if (dropped) return { kind: 'dropped', window, ...dropped };
  if (!Array.isArray(r.ids)) throw shapeError('mapping');
  const ids: { id: string; type: string }[] = [];
  for (const entry of r.ids as { id?: unknown; type?: unknown }[]) {
    ids.push({ id: String(entry?.id ?? ''), type: String(entry?.type ?? '') });
  }
  return { kind: 'person', window, ids };
}
