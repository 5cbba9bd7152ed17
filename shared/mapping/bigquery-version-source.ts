import type { BigQuery, Job } from '@google-cloud/bigquery';
import { untilAborted } from '../deadline.js';
import { BackendUnavailableError, InvalidQueryError } from '../errors.js';
import type { BigQueryMappingOptions } from './bigquery-mapping-source.js';
import {
  type BigQueryJobOptions,
  lazyBigQuery,
  parseDropped,
  queryCommon,
  queryRows,
  shapeError,
  startJob,
} from './bigquery-rows.js';
import { type DropReason, partitionListQuery, versionSyncQuery } from './mapping-query.js';

/** A finished query job whose result rows the shards read (BigQuery keeps them about a day). */
export interface ResultRef {
  readonly projectId: string;
  readonly location: string | undefined;
  readonly jobId: string;
}

/** One result row of a version: a person with its ids, or a count of dropped source rows. */
export type VersionRow =
  | {
      readonly kind: 'person';
      readonly person: string;
      readonly ids: ReadonlyArray<{ readonly id: string; readonly type: string }>;
    }
  | { readonly kind: 'dropped'; readonly reason: DropReason; readonly rows: number };

/** A page of result rows and the position of its first row. */
export interface VersionPage {
  readonly offset: number;
  readonly rows: readonly VersionRow[];
}

/** A finished version query's rows, read by position (what a shard worker needs). */
export interface ResultPages {
  /** Rows [from, to) of a result, page by page, the next page fetched while one is consumed. */
  pages(
    result: ResultRef,
    from: number,
    to: number,
    signal: AbortSignal,
  ): AsyncIterable<VersionPage>;
}

/** The mapping table as syncMapping reads it: which partitions exist, and whole versions. */
export interface VersionSource extends ResultPages {
  /** The partitions between `from` and `to` (inclusive, YYYY-MM-DD) that have rows, oldest first. */
  partitions(from: string, to: string, signal: AbortSignal): Promise<string[]>;
  /**
   * Runs the version query (see versionSyncQuery) for the window ending at `partition` and waits
   * for it: where its rows are, and how many there are. A query BigQuery rejects as written is
   * InvalidQueryError.
   */
  runVersionQuery(
    partition: string,
    windowDays: number,
    signal: AbortSignal,
  ): Promise<{ result: ResultRef; rows: number }>;
}

type Page = [rows: unknown[], next: Record<string, unknown> | null | undefined, response: unknown];

/** The mapping table's versions through BigQuery: one query job per version, read by position. */
export class BigQueryVersionSource implements VersionSource {
  private readonly bigquery: () => BigQuery;
  private readonly results: BigQueryResultPages;

  constructor(
    private readonly options: Omit<BigQueryMappingOptions, 'lookbackDays' | 'windowDays'>,
    client?: BigQuery,
  ) {
    this.bigquery = lazyBigQuery(options, 'profile-api-sync-mapping', client);
    this.results = new BigQueryResultPages(options, this.bigquery());
  }

  pages(
    result: ResultRef,
    from: number,
    to: number,
    signal: AbortSignal,
  ): AsyncIterable<VersionPage> {
    return this.results.pages(result, from, to, signal);
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

  async runVersionQuery(
    partition: string,
    windowDays: number,
    signal: AbortSignal,
  ): Promise<{ result: ResultRef; rows: number }> {
    const job = await startJob(
      this.bigquery(),
      {
        query: versionSyncQuery(this.options),
        params: { partition, window_days: String(windowDays) },
        types: { partition: 'STRING', window_days: 'INT64' },
        ...queryCommon(this.options),
      },
      signal,
      this.options.table,
    );
    // Polls until the job is done (the client answers jobComplete: false meanwhile).
    for (;;) {
      let response: { jobComplete?: boolean; totalRows?: unknown };
      try {
        const page = (await untilAborted(
          job.getQueryResults({ maxResults: 1, autoPaginate: false }) as Promise<unknown>,
          signal,
        )) as Page;
        response = (page[2] ?? {}) as typeof response;
      } catch (err) {
        job.cancel().catch(() => undefined);
        if (signal.aborted) throw signal.reason;
        throw jobError(err, this.options.table);
      }
      if (response.jobComplete === false) continue;
      const rows = Number(response.totalRows ?? 0);
      if (!Number.isSafeInteger(rows) || rows < 0) throw shapeError('version');
      const reference = (job.metadata as { jobReference?: { projectId?: string } } | undefined)
        ?.jobReference;
      const projectId = reference?.projectId ?? job.bigQuery.projectId;
      return { result: { projectId, location: job.location, jobId: job.id as string }, rows };
    }
  }
}

/** Reads result rows of finished version queries (the shard workers' only BigQuery use). */
export class BigQueryResultPages implements ResultPages {
  private readonly bigquery: () => BigQuery;

  constructor(
    private readonly options: BigQueryJobOptions & { readonly pageSize: number },
    client?: BigQuery,
  ) {
    this.bigquery = lazyBigQuery(options, 'profile-api-sync-mapping-shard', client);
  }

  async *pages(
    result: ResultRef,
    from: number,
    to: number,
    signal: AbortSignal,
  ): AsyncIterable<VersionPage> {
    if (from >= to) return;
    const job: Job = this.bigquery().job(result.jobId, {
      location: result.location,
      projectId: result.projectId,
    });
    const fetchPage = (query: Record<string, unknown>): Promise<Page> => {
      const page = job.getQueryResults({ ...query, autoPaginate: false }) as Promise<unknown>;
      page.catch(() => undefined); // awaited below, or abandoned when the consumer stops
      return page as Promise<Page>;
    };
    const size = (offset: number) => Math.min(this.options.pageSize, to - offset);
    let offset = from;
    let pending: Promise<Page> | undefined = fetchPage({
      startIndex: from,
      maxResults: size(from),
    });
    while (pending) {
      let rows: unknown[];
      let next: Record<string, unknown> | null | undefined;
      try {
        [rows, next] = await untilAborted(pending, signal);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw new BackendUnavailableError(
          'bigquery',
          `reading rows ${offset}.. of sync job ${result.jobId} failed: ${(err as Error).message}`,
          { cause: err },
        );
      }
      const first = offset;
      offset += rows.length;
      // BigQuery may send fewer rows than asked (its response size limit): continue from there.
      pending =
        offset < to && next?.pageToken && rows.length > 0
          ? fetchPage({ pageToken: next.pageToken, maxResults: size(offset) })
          : undefined;
      if (offset < to && !pending) {
        throw new BackendUnavailableError(
          'bigquery',
          `sync job ${result.jobId} ended at row ${offset}, before ${to}: its results expired or changed`,
        );
      }
      yield { offset: first, rows: rows.map(toVersionRow) };
    }
  }
}

/** A job that failed as written (400/404) is a configuration error; anything else may pass. */
function jobError(err: unknown, table: string): Error {
  const status = (err as { code?: unknown }).code;
  if (status === 400 || status === 404) {
    return new InvalidQueryError(
      `BigQuery rejected the mapping query on ${table}: ${String((err as Error).message)}`,
      { cause: err },
    );
  }
  return new BackendUnavailableError('bigquery', `running the sync query on ${table} failed`, {
    cause: err,
  });
}

function toVersionRow(row: unknown): VersionRow {
  const r = row as { person?: unknown; ids?: unknown; reason?: unknown; row_count?: unknown };
  const dropped = parseDropped(r, 'version');
  if (dropped) return { kind: 'dropped', ...dropped };
  if (typeof r.person !== 'string' || !Array.isArray(r.ids)) throw shapeError('version');
  const ids: { id: string; type: string }[] = [];
  for (const entry of r.ids as { id?: unknown; type?: unknown }[]) {
    ids.push({ id: String(entry?.id ?? ''), type: String(entry?.type ?? '') });
  }
  return { kind: 'person', person: r.person, ids };
}
