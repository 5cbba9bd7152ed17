import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from '../../shared/errors.js';

type Headers = Readonly<Record<string, string>>;

/**
 * Whether the `x-api-key` header holds one of `keys`, compared in constant time: every key is
 * compared (no early exit), on fixed-length digests (no length leak). No keys: never.
 */
export function apiKeyMatcher(keys: readonly string[]): (headers: Headers) => boolean {
  if (keys.length === 0) return () => false;
  const digests = keys.map(digest);
  return (headers) => {
    const presented = headers['x-api-key'];
    const candidate = digest(typeof presented === 'string' ? presented : '');
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(candidate, d) || ok;
    return ok;
  };
}

/**
 * Throws 401 unless `x-api-key` holds one of the caller keys or operator keys; no check at all
 * when there are no caller keys (API_KEYS unset).
 */
export function apiKeyCheck(
  keys: readonly string[],
  operatorKeys: readonly string[] = [],
): (headers: Headers) => void {
  if (keys.length === 0) return () => undefined;
  const matches = apiKeyMatcher([...keys, ...operatorKeys]);
  return (headers) => {
    if (!matches(headers)) {
      throw new HttpError(401, 'unauthorized', 'a valid x-api-key header is required');
    }
  };
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}
