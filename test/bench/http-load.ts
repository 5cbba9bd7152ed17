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

/** Seconds of load before a measured run: the JIT settles and lazy loads finish. */
const WARM_UP_SECONDS = 3;

/** Where each list of paths resumes: successive runs on one list continue its cycle. */
const cursors = new WeakMap<readonly string[], number>();

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
  await loadRun(url, connections, WARM_UP_SECONDS, paths, method, body);
  return loadRun(url, connections, seconds, paths, method, body);
}

/** One load run without warm-up (see load). */
export async function loadRun(
  url: string,
  connections: number,
  seconds: number,
  paths?: readonly string[],
  method = 'GET',
  body?: string,
): Promise<MixFigures> {
  const requests: autocannon.Request[] | undefined = paths
    ? [
        {
          method: method as autocannon.Request['method'],
          ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
          setupRequest: (req) => {
            const next = cursors.get(paths) ?? 0;
            cursors.set(paths, next + 1);
            req.path = paths[next % paths.length] as string;
            return req;
          },
        },
      ]
    : undefined;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    ...(requests ? { requests } : {}),
  });
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
