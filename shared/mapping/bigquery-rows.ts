import { BigQuery, type BigQueryOptions, type Job, type Query } from '@google-cloud/bigquery';
import { untilAborted } from '../deadline.js';
import { BackendUnavailableError, InvalidQueryError } from '../errors.js';
import { accessTokenAuth } from '../google-auth.js';
import { DROP_REASONS, type DropReason } from './mapping-query.js';

/** Where a source's BigQuery jobs run, and how long one may take. */
export interface BigQueryJobOptions {
  readonly projectId?: string | undefined;
  readonly location?: string | undefined;
  readonly jobTimeoutMs: number;
  /** A bearer token instead of Application Default Credentials. */
  readonly accessToken?: string | undefined;
}

/** A source's BigQuery client: the injected one, else one built on first use. */
export function lazyBigQuery(
  options: BigQueryJobOptions,
  userAgent: string,
  client?: BigQuery,
): () => BigQuery {
  let bigquery = client;
  return () => {
    bigquery ??= new BigQuery(clientOptions(options, userAgent));
    return bigquery;
  };
}

function clientOptions(options: BigQueryJobOptions, userAgent: string): BigQueryOptions {
  return {
    ...(options.projectId ? { projectId: options.projectId } : {}),
    ...(options.location ? { location: options.location } : {}),
    userAgent,
    ...accessTokenAuth(options.accessToken),
  };
}

/** The query options every job of a source shares. */
export function queryCommon(options: BigQueryJobOptions) {
  return {
    useLegacySql: false,
    location: options.location,
    jobTimeoutMs: options.jobTimeoutMs,
  };
}

/**
 * Runs one query job and streams its result rows, pages fetched one ahead: the next request is
 * in flight while this page's rows are consumed, and at most two pages are ever held (the page
 * size bounds the memory). The client takes no signal, so every wait races `signal`; the job is
 * cancelled when reading fails or `signal` aborts (best effort: it would keep running and billing).
 */
export async function* queryRows(
  client: BigQuery,
  query: Query,
  pageSize: number,
  signal: AbortSignal,
  what: string,
): AsyncIterable<unknown> {
  const job = await startJob(client, query, signal, what);
  type Page = [rows: unknown[], next: Record<string, unknown> | null | undefined];
  const fetchPage = (next: Record<string, unknown>): Promise<Page> => {
    const page = job.getQueryResults({
      ...next,
      autoPaginate: false,
    }) as Promise<unknown> as Promise<Page>;
    page.catch(() => undefined); // awaited below, or abandoned when the consumer stops
    return page;
  };
  let pending: Promise<Page> | undefined = fetchPage({ maxResults: pageSize });
  try {
    while (pending) {
      const [rows, next]: Page = await untilAborted(pending, signal);
      pending = next ? fetchPage(next) : undefined;
      yield* rows;
    }
  } catch (err) {
    job.cancel().catch(() => undefined);
    if (signal.aborted) throw signal.reason;
    throw new BackendUnavailableError('bigquery', `reading results of ${what} failed`, {
      cause: err,
    });
  }
}

/** Starts a query job; a query BigQuery rejects as written is a configuration error. */
export async function startJob(
  client: BigQuery,
  query: Query,
  signal: AbortSignal,
  what: string,
): Promise<Job> {
  try {
    const [job] = await untilAborted(client.createQueryJob(query), signal);
    return job;
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw startError(err, what);
  }
}

/** A 400/404 from BigQuery means the query or table is wrong: retrying cannot help. */
function startError(err: unknown, what: string): Error {
  const status = (err as { code?: unknown }).code;
  if (status === 400 || status === 404) {
    const message = (err as { message?: unknown }).message;
    return new InvalidQueryError(
      `BigQuery rejected the mapping query on ${what}: ${String(message)}`,
      {
        cause: err,
      },
    );
  }
  return new BackendUnavailableError('bigquery', `starting the query on ${what} failed`, {
    cause: err,
  });
}

const REASONS: ReadonlySet<string> = new Set(DROP_REASONS);

/**
 * The count of dropped source rows a result row of the `query` query carries (its `reason` and
 * `row_count`), or undefined when it carries none; an unknown reason is a shape error.
 */
export function parseDropped(
  row: { readonly reason?: unknown; readonly row_count?: unknown },
  query: string,
): { reason: DropReason; rows: number } | undefined {
  if (row.reason === null || row.reason === undefined) return undefined;
  if (typeof row.reason !== 'string' || !REASONS.has(row.reason)) throw shapeError(query);
  return { reason: row.reason as DropReason, rows: Number(row.row_count) };
}

/** Result rows the `query` query (`mapping`, `partition`) cannot return: the SQL or BigQuery changed. */
export function shapeError(query: string): BackendUnavailableError {
  return new BackendUnavailableError(
    'bigquery',
    `the ${query} query returned rows of an unexpected shape`,
  );
}
