import type { BigQuery } from '@google-cloud/bigquery';
import type { BigQueryMappingOptions } from './bigquery-mapping-source.js';
import { lazyBigQuery, parseDropped, queryCommon, queryRows, shapeError } from './bigquery-rows.js';
import { type DropReason, partitionListQuery, partitionSyncQuery } from './mapping-query.js';

/** One row of a partition's links: an id of a person (maybe moved from another), or a count of dropped rows. */
export type PartitionLink =
  | {
      readonly kind: 'link';
      readonly person: string;
      readonly id: string;
      readonly type: string;
      /** The person the id belonged to in its previous partition of the window, if another one. */
      readonly movedFrom: string | undefined;
    }
  | { readonly kind: 'dropped'; readonly reason: DropReason; readonly rows: number };

/** The mapping table read one partition at a time, for syncMapping. */
export interface PartitionSource {
  /** The partitions between `from` and `to` (inclusive, YYYY-MM-DD) that have rows, oldest first. */
  partitions(from: string, to: string, signal: AbortSignal): Promise<string[]>;
  /** One partition's links, cleaned as the snapshot query cleans them; streamed. */
  links(partition: string, signal: AbortSignal): AsyncIterable<PartitionLink>;
}

/** The mapping table's partitions through BigQuery (see partitionSyncQuery). */
export class BigQueryPartitionSource implements PartitionSource {
  private readonly bigquery: () => BigQuery;

  constructor(
    private readonly options: Omit<BigQueryMappingOptions, 'lookbackDays'>,
    client?: BigQuery,
  ) {
    this.bigquery = lazyBigQuery(options, 'profile-api-sync-mapping', client);
  }

  async partitions(from: string, to: string, signal: AbortSignal): Promise<string[]> {
    const found: string[] = [];
    const rows = queryRows(
      this.bigquery(),
      {
        query: partitionListQuery(this.options),
        params: { from, to },
        types: { from: 'STRING', to: 'STRING' },
        ...queryCommon(this.options),
      },
      this.options.pageSize,
      signal,
      this.options.table,
    );
    for await (const row of rows) {
      const day = (row as { day?: unknown }).day;
      if (typeof day !== 'string') throw shapeError('partition');
      found.push(day);
    }
    return found;
  }

  async *links(partition: string, signal: AbortSignal): AsyncIterable<PartitionLink> {
    const rows = queryRows(
      this.bigquery(),
      {
        query: partitionSyncQuery(this.options),
        params: { partition, window_days: String(this.options.windowDays) },
        types: { partition: 'STRING', window_days: 'INT64' },
        ...queryCommon(this.options),
      },
      this.options.pageSize,
      signal,
      this.options.table,
    );
    for await (const row of rows) yield toLink(row);
  }
}

function toLink(row: unknown): PartitionLink {
  const r = row as Record<string, unknown>;
  const dropped = parseDropped(r, 'partition');
  if (dropped) return { kind: 'dropped', ...dropped };
  if (typeof r.person !== 'string' || typeof r.id !== 'string' || typeof r.type !== 'string') {
    throw shapeError('partition');
  }
  const movedFrom = typeof r.moved_from === 'string' ? r.moved_from : undefined;
  return { kind: 'link', person: r.person, id: r.id, type: r.type, movedFrom };
}
