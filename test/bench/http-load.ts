import autocannon from 'autocannon';

/** Throughput and latency of one load run. */
export interface LoadFigures {
  readonly connections: number;
  readonly requestsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
}

/** One load run's figures, with the average answer size. */
export interface MixFigures extends LoadFigures {
  readonly bytesPerAnswer: number;
}

/**
 * Drives `url` with `connections` keep-alive connections for `seconds` (after a short warm-up).
 * With `paths`, each request takes the next path of the list (a mix of ids), cycling.
 */
export async function load(
  url: string,
  connections: number,
  seconds: number,
  paths?: readonly string[],
  method = 'GET',
  body?: string,
): Promise<MixFigures> {
  let next = 0;
  const requests: autocannon.Request[] | undefined = paths
    ? [
        {
          method: method as autocannon.Request['method'],
          ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
          setupRequest: (req) => {
            req.path = paths[next++ % paths.length] as string;
            return req;
          },
        },
      ]
    : undefined;
  const options = { url, connections, ...(requests ? { requests } : {}) };
  await autocannon({ ...options, duration: 1 });
  const result = await autocannon({ ...options, duration: seconds });
  return {
    connections,
    requestsPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    bytesPerAnswer:
      result.requests.average > 0 ? result.throughput.average / result.requests.average : 0,
  };
}
