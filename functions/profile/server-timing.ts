import type { HttpResult } from '../../shared/http/http-event.js';

/** Phase durations of one request, in milliseconds, for Server-Timing and the request log. */
export type Phases = Record<string, number>;

/** `server-timing` from the phases measured so far (`total` is added at the end). */
export function serverTiming(phases: Phases): string {
  let timing = '';
  for (const name in phases) {
    timing += `${timing ? ', ' : ''}${name};dur=${timingMs(phases[name] as number)}`;
  }
  return timing;
}

/** Adds the request's total to a result's server-timing, when it has one. */
export function withTotalTiming(result: HttpResult, totalMs: number): HttpResult {
  const timing = result.headers['server-timing'];
  if (timing === undefined) return result;
  // Every result with a server-timing header was built for this request: add to it in place.
  (result.headers as Record<string, string>)['server-timing'] =
    `${timing}, total;dur=${timingMs(totalMs)}`;
  return result;
}

/**
 * A duration in milliseconds with two decimals, as `toFixed(2)` writes it (up to how a
 * half-hundredth rounds): integers only, which print from V8's cache of small numbers where
 * toFixed goes through the runtime on every call, five times per answer.
 */
export function timingMs(ms: number): string {
  const hundredths = Math.round(ms * 100);
  if (!(hundredths >= 0 && hundredths < 2 ** 31)) return ms.toFixed(2);
  const whole = Math.floor(hundredths / 100);
  const rest = hundredths - whole * 100;
  return rest < 10 ? `${whole}.0${rest}` : `${whole}.${rest}`;
}
