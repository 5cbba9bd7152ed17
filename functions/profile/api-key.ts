import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from '../../shared/errors.js';

/**
 * Checks the `x-api-key` header against the configured keys in constant time: every key is
 * compared (no early exit), on fixed-length digests (no length leak). No keys: no check.
 */
export function apiKeyCheck(
  keys: readonly string[],
): (headers: Readonly<Record<string, string>>) => void {
  if (keys.length === 0) return () => undefined;
  const digests = keys.map(digest);
  return (headers) => {
    const presented = headers['x-api-key'];
    const candidate = digest(typeof presented === 'string' ? presented : '');
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(candidate, d) || ok;
    if (!ok) throw new HttpError(401, 'unauthorized', 'a valid x-api-key header is required');
  };
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}
