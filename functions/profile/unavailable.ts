import { HttpError } from '../../shared/errors.js';

/**
 * The 503 of a backend that cannot answer for now; the handler answers it with Retry-After
 * (RETRY_AFTER_SECS), as every 503.
 */
export function unavailable(
  code: 'snapshots_unavailable' | 'mapping_unavailable' | 'store_unavailable',
  message: string,
  cause?: unknown,
): HttpError {
  return new HttpError(503, code, message, { cause });
}
