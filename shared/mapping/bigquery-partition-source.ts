import { BigQuery, type BigQueryOptions } from '@google-cloud/bigquery';
import { BackendUnavailableError } from '../errors.js';
import { accessTokenAuth } from '../google-auth.js';
import type { BigQueryMappingOptions } from './bigquery-mapping-source.js';
import { queryRows } from './bigquery-rows.js';
import {
  DROP_REASONS,
  type DropReason,
  partitionListQuery,
  partitionSyncQuery,
} from './mapping-query.js';

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
  readonly description: string;
  /** The partitions between `from` and `to` (inclusive, YYYY-MM-DD) that have rows, oldest first. */
  partitions(from: string, to: string, signal: AbortSignal): Promise<string[]>;
  /** One partition's links, cleaned as the snapshot query cleans them; streamed. */
  links(partition: string, signal: AbortSignal): AsyncIterable<PartitionLink>;
}

/** The mapping table's partitions through BigQuery (see partitionSyncQuery). */
export class BigQueryPartitionSource implements PartitionSource {
  readonly description: string;
  private client: BigQuery | undefined;

  constructor(
    private readonly options: Omit<BigQueryMappingOptions, 'lookbackDays'>,
    client?: BigQuery,
  ) {
    this.description = `bigquery ${options.table}`;
    this.client = client;
  }

  async partitions(from: string, to: string, signal: AbortSignal): Promise<string[]> {
    const found: string[] = [];
    const rows = queryRows(
      this.bigquery(),
      {
        query: partitionListQuery(this.options),
        params: { from, to },
        types: { from: 'STRING', to: 'STRING' },
        ...this.common(),
      },
      this.options.pageSize,
      signal,
      this.options.table,
    );
    for await (const row of rows) {
      const day = (row as { day?: unknown }).day;
      if (typeof day !== 'string') throw shapeError();
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
        ...this.common(),
      },
      this.options.pageSize,
      signal,
      this.options.table,
    );
    for await (const row of rows) yield toLink(row);
  }

  private common() {
    return {
      useLegacySql: false,
      location: this.options.location,
      jobTimeoutMs: this.options.jobTimeoutMs,
    };
  }

  private bigquery(): BigQuery {
    this.client ??= new BigQuery(this.clientOptions());
    return this.client;
  }

  private clientOptions(): BigQueryOptions {
    return {
      ...(this.options.projectId ? { projectId: this.options.projectId } : {}),
      ...(this.options.location ? { location: this.options.location } : {}),
      userAgent: 'profile-api-sync-mapping',
      ...accessTokenAuth(this.options.accessToken),
    };
  }
}

const REASONS: ReadonlySet<string> = new Set(DROP_REASONS);

function toLink(row: unknown): PartitionLink {
  const r = row as Record<string, unknown>;
  if (r.reason !== null && r.reason !== undefined) {
    if (typeof r.reason !== 'string' || !REASONS.has(r.reason)) throw shapeError();
    return { kind: 'dropped', reason: r.reason as DropReason, rows: Number(r.row_count) };
  }
  if (typeof r.person !== 'string' || typeof r.id !== 'string' || typeof r.type !== 'string') {
    throw shapeError();
  }
  const movedFrom = typeof r.moved_from === 'string' ? r.moved_from : undefined;
  return { kind: 'link', person: r.person, id: r.id, type: r.type, movedFrom };
}

function shapeError(): BackendUnavailableError {
  return new BackendUnavailableError(
    'bigquery',
    'the partition query returned rows of an unexpected shape',
  );
}
