import type { Catalog } from '../../shared/catalog/catalog.js';
import { HttpError } from '../../shared/errors.js';
import type { HandlerContext } from '../../shared/http/http-event.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import type { ProfileDeps } from './profile-deps.js';
import type { Phases } from './server-timing.js';
import { unavailable } from './unavailable.js';

/** The catalog when the catalog and the mapping can answer now (a warm instance), else undefined. */
export function readyNow(deps: ProfileDeps, phases: Phases): LoadedSnapshot<Catalog> | undefined {
  const catalog = deps.catalog.peek();
  if (catalog === undefined || deps.mapping.version() === undefined) return undefined;
  phases.snapshots = 0;
  return catalog;
}

/**
 * The catalog, once the catalog and the mapping can answer, after a bounded wait
 * (FIRST_LOAD_TIMEOUT_MS) for the first loads of a cold instance; 503 when they fail. A warm
 * instance answers from readyNow, without a promise.
 */
export async function whenReady(
  deps: ProfileDeps,
  context: HandlerContext,
  phases: Phases,
): Promise<LoadedSnapshot<Catalog>> {
  const now = readyNow(deps, phases);
  if (now) return now;
  const t0 = performance.now();
  const [loaded] = await Promise.all([catalogReady(deps), mappingReady(deps)]);
  phases.snapshots = performance.now() - t0;
  if (context.signal?.aborted) throw new HttpError(503, 'aborted', 'the request was cancelled');
  return loaded;
}

async function mappingReady(deps: ProfileDeps): Promise<void> {
  try {
    await deps.mapping.ready(deps.config.FIRST_LOAD_TIMEOUT_MS);
  } catch (err) {
    deps.log.warn('mapping not available', { err });
    throw deps.mapping.kind === 'snapshot'
      ? unavailable('snapshots_unavailable', 'the service is starting; retry later', err)
      : unavailable('mapping_unavailable', 'the identity mapping is unavailable; retry later', err);
  }
}

async function catalogReady(deps: ProfileDeps): Promise<LoadedSnapshot<Catalog>> {
  try {
    return await deps.catalog.getWithin(
      deps.config.FIRST_LOAD_TIMEOUT_MS,
      () => new Error('first snapshot load timed out'),
    );
  } catch (err) {
    deps.log.warn('snapshots not available', { err });
    throw unavailable('snapshots_unavailable', 'the service is starting; retry later', err);
  }
}
