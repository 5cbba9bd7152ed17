/** Which requests the profile function logs itself (LOG_REQUESTS). */
export type LogRequests =
  | { readonly mode: 'all' }
  | { readonly mode: 'errors' }
  | { readonly mode: 'sample'; readonly rate: number };

/**
 * Decides, per request, whether to write the function's own log line. Cloud Run already writes
 * a request log entry for every request (status, latency, URL), so the function's line (which
 * adds the phases and the trace) is for what needs looking at: 5xx, client errors other than an
 * unknown id (a normal answer for a lookup API), and requests slower than `slowMs` are always
 * logged; the rest only with `all`, or a random share with `sample:<rate>`.
 */
export function requestLogPolicy(
  setting: LogRequests,
  slowMs: number,
  random: () => number = Math.random,
): (status: number, totalMs: number, errorCode: string | undefined) => boolean {
  return (status, totalMs, errorCode) => {
    if (setting.mode === 'all') return true;
    if (status >= 500 || totalMs >= slowMs) return true;
    if (status >= 400 && errorCode !== 'unknown_id') return true;
    return setting.mode === 'sample' && random() < setting.rate;
  };
}
