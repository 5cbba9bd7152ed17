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

/** Drives `url` with `connections` keep-alive connections for `seconds` (after a short warm-up). */
export async function load(
  url: string,
  connections: number,
  seconds: number,
): Promise<LoadFigures> {
  await autocannon({ url, connections, duration: 1 });
  const result = await autocannon({ url, connections, duration: seconds });
  return {
    connections,
    requestsPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}
