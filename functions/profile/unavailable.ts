import { HttpError } from '../../shared/errors.js';

/** A 503 that tells the caller when to retry (RETRY_AFTER_SECS). */
export function unavailable(
  code: 'snapshots_unavailable' | 'mapping_unavailable' | 'store_unavailable',
  message: string,
  retryAfterSecs: number,
  cause?: unknown,
): HttpError {
  return new HttpError(503, code, message, {
    headers: { 'retry-after': String(retryAfterSecs) },
    cause,
  });
}
