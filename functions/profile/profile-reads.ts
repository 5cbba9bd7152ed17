import { BackendUnavailableError } from '../../shared/errors.js';
import type { ProfileBins } from '../../shared/profiles/profile-store.js';
import { distinctKeys, type LookupPlan } from './lookup-plan.js';
import type { ProfileDeps } from './profile-deps.js';
import type { Phases } from './server-timing.js';
import { unavailable } from './unavailable.js';

/** Each plan's records, in the order of its keys (undefined: no record). */
export type PlannedRecords = readonly (readonly (ProfileBins | undefined)[])[];

/**
 * Every profile the plans of a request (or a whole batch) need, each key once, in ONE
 * profile-store call, within what is left of REQUEST_BUDGET_MS after the mapping: `planned`
 * with each plan's records. 503 `store_unavailable` when the store cannot answer for now; a
 * store that refuses the request for good is a 500. Times `phases.store`.
 */
export function readProfiles<P extends { readonly plans: readonly LookupPlan[] }>(
  deps: ProfileDeps,
  planned: P,
  phases: Phases,
): Promise<P & { readonly records: PlannedRecords }> {
  const t0 = performance.now();
  const { keys, slots } = distinctKeys(planned.plans);
  const budgetMs = Math.max(1, deps.config.REQUEST_BUDGET_MS - (phases.mapping ?? 0));
  // One promise, the store's own chained once: the lookup is completed here rather than in a
  // promise of its own (each costs async-hook calls of the framework's per-request domain).
  return deps.store.getMany(keys, { timeoutMs: budgetMs }).then(
    (bins) => {
      deps.backends.storeAnswered(true);
      phases.store = performance.now() - t0;
      return { ...planned, records: slots.map((slot) => slot.map((k) => bins[k])) };
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
