import type { BigQuery, Job, Query } from '@google-cloud/bigquery';
import { untilAborted } from '../deadline.js';
import { BackendUnavailableError, InvalidQueryError } from '../errors.js';

/**
 * Runs one query job and streams its result rows, pages fetched one ahead: the next request is
 * in flight while this page's rows are consumed, and at most two pages are ever held (the page
 * size bounds the memory). The client takes no signal, so every wait races `signal`; a job
 * nobody reads any more is cancelled (best effort: it would keep running and billing).
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
    if (err instanceof BackendUnavailableError) throw err;
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
export function startError(err: unknown, what: string): Error {
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
