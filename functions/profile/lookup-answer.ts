import type { PooledBytes } from '../../shared/byte-writer.js';
import type { Catalog } from '../../shared/catalog/catalog.js';
import type { HttpResult } from '../../shared/http/http-event.js';
import { jsonResult } from '../../shared/http/responses.js';
import type { MappingAnswer } from '../../shared/mapping/mapping-store.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { type Phases, serverTiming } from './server-timing.js';

/**
 * The 200 of a lookup (GET or batch): its rendered body, the versions that answered and the
 * phases so far in its headers, with `headers` of its own.
 */
export function lookupAnswer(
  catalog: LoadedSnapshot<Catalog>,
  mapping: MappingAnswer,
  phases: Phases,
  body: PooledBytes,
  headers: Record<string, string> = {},
): HttpResult {
  return jsonResult(200, body, {
    'x-catalog-version': catalog.manifest.version,
    'x-mapping-version': mapping.version,
    ...headers,
    'server-timing': serverTiming(phases),
  });
}
