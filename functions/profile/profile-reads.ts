import { BackendUnavailableError } from '../../shared/errors.js';
import type { ProfileBins, ProfileKey } from '../../shared/profiles/profile-store.js';
import type { ProfileDeps } from './profile-deps.js';
import type { Phases } from './server-timing.js';
import { unavailable } from './unavailable.js';

/**
 * Every profile of a request (or a whole batch) in ONE profile-store call, within what is left
 * of REQUEST_BUDGET_MS after the mapping; one entry per key, in order. 503 `store_unavailable`
 * when the store cannot answer for now; a store that refuses the request for good is a 500.
 * Times `phases.store`.
 */
export function readProfiles(
  deps: ProfileDeps,
  keys: readonly ProfileKey[],
  phases: Phases,
): Promise<readonly (ProfileBins | undefined)[]> {
  const t0 = performance.now();
  const budgetMs = Math.max(1, deps.config.REQUEST_BUDGET_MS - (phases.mapping ?? 0));
  // One promise, the store's own chained once (an async function awaiting it makes two: each
  // costs async-hook calls of the framework's per-request domain, bench part n).
  return deps.store.getMany(keys, { timeoutMs: budgetMs }).then(
    (bins) => {
      deps.backends.storeAnswered(true);
      phases.store = performance.now() - t0;
      return bins;
    },
    (err: unknown) => {
      // Anything but "unavailable for now" (a store that refuses the request as configured:
      // unknown namespace, security...) is logged at ERROR by the handler and answered 500.
      if (!(err instanceof BackendUnavailableError)) throw err;
      deps.backends.storeAnswered(false);
      deps.log.warn('profile store unavailable', { err });
      throw unavailable('store_unavailable', 'the profile store is unavailable; retry later');
    },
  );
}
