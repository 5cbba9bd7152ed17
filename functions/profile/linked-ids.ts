import { ProfileApiError } from '../../shared/errors.js';
import type { TypedId } from '../../shared/id-types.js';
import type { MappingAnswer } from '../../shared/mapping/mapping-store.js';
import type { ProfileDeps } from './profile-deps.js';
import type { Phases } from './server-timing.js';
import { unavailable } from './unavailable.js';

/**
 * The linked ids of every request (its candidate typed ids) in ONE mapping call (in memory: at
 * once; Bigtable: at most two reads for all of them), within REQUEST_BUDGET_MS; 503
 * `mapping_unavailable` when the mapping store cannot answer. Times `phases.mapping`.
 */
export async function findLinkedIds(
  deps: ProfileDeps,
  requests: readonly (readonly TypedId[])[],
  maxLinked: number,
  phases: Phases,
): Promise<MappingAnswer> {
  const t0 = performance.now();
  let found: MappingAnswer;
  try {
    found = await deps.mapping.find(requests, maxLinked, deps.config.REQUEST_BUDGET_MS);
  } catch (err) {
    throw mappingFailed(deps, err);
  }
  return answered(deps, found, phases, t0);
}

/**
 * findLinkedIds without a promise, when the mapping is in the instance (snapshot mode, the
 * default); undefined when it is not (Bigtable: then findLinkedIds). Measured on the production
 * path (bench part n): each promise avoided saves async-hook calls of the framework's domain.
 */
export function linkedIdsInMemory(
  deps: ProfileDeps,
  requests: readonly (readonly TypedId[])[],
  maxLinked: number,
  phases: Phases,
): MappingAnswer | undefined {
  if (deps.mapping.findInMemory === undefined) return undefined;
  const t0 = performance.now();
  let found: MappingAnswer;
  try {
    found = deps.mapping.findInMemory(requests, maxLinked);
  } catch (err) {
    throw mappingFailed(deps, err);
  }
  return answered(deps, found, phases, t0);
}

function answered(
  deps: ProfileDeps,
  found: MappingAnswer,
  phases: Phases,
  t0: number,
): MappingAnswer {
  deps.backends.mappingAnswered(true);
  phases.mapping = performance.now() - t0;
  return found;
}

function mappingFailed(deps: ProfileDeps, err: unknown): unknown {
  if (!(err instanceof ProfileApiError)) return err;
  deps.backends.mappingAnswered(false);
  deps.log.warn('mapping store unavailable', { err });
  return unavailable('mapping_unavailable', 'the identity mapping is unavailable; retry later');
}
