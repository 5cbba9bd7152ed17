import type { Catalog } from '../../shared/catalog/catalog.js';
import type { HandlerContext } from '../../shared/http/http-event.js';
import type { MappingAnswer } from '../../shared/mapping/mapping-store.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { type AnswerSelection, renderOptions } from './answer-options.js';
import { findLinkedIds, linkedIdsInMemory } from './linked-ids.js';
import { type LookupPlan, planLookup } from './lookup-plan.js';
import type { ProfileDeps } from './profile-deps.js';
import { type PlannedRecords, readProfiles } from './profile-reads.js';
import type { ProfileRequest } from './profile-request.js';
import { readyNow, whenReady } from './readiness.js';
import type { RenderOptions } from './render-profiles.js';
import type { Phases } from './server-timing.js';

/** What a lookup found, ready to render. */
export interface LookedUp {
  readonly catalog: LoadedSnapshot<Catalog>;
  readonly options: RenderOptions;
  readonly mapping: MappingAnswer;
  /** One per request, in order. */
  readonly plans: readonly LookupPlan[];
  /** Each plan's records, in the order of its keys (undefined: no record). */
  readonly records: PlannedRecords;
}

/**
 * The steps every lookup takes, GET and batch alike, in order: wait until the catalog and the
 * mapping can answer (at once on a warm instance), check the selection against the catalog,
 * find the linked ids of all requests in ONE mapping call, plan the keys to read, and read all
 * their profiles (each key once) in ONE store call, all within REQUEST_BUDGET_MS. Each step
 * times its phase; 503 when a backend cannot answer.
 *
 * A step that must wait (the first loads of a cold instance, Bigtable's reads) is chained; a
 * warm instance in snapshot mode takes the first steps at once and chains only the store read:
 * no async function, whose promise and await each cost async-hook calls of the framework's
 * per-request domain (about 5 us a layer, bench part n).
 */
export function lookUp(
  deps: ProfileDeps,
  context: HandlerContext,
  phases: Phases,
  requests: readonly ProfileRequest[],
  selection: AnswerSelection,
  maxLinked: number,
): Promise<LookedUp> {
  const catalog = readyNow(deps, phases);
  if (catalog !== undefined)
    return lookUpReady(deps, phases, requests, selection, maxLinked, catalog);
  return whenReady(deps, context, phases).then((ready) =>
    lookUpReady(deps, phases, requests, selection, maxLinked, ready),
  );
}

/** lookUp once the catalog and the mapping can answer. */
function lookUpReady(
  deps: ProfileDeps,
  phases: Phases,
  requests: readonly ProfileRequest[],
  selection: AnswerSelection,
  maxLinked: number,
  catalog: LoadedSnapshot<Catalog>,
): Promise<LookedUp> {
  const options = renderOptions(selection, catalog.value, deps);
  const candidates = requests.map((r) => r.candidates);
  const mapping = linkedIdsInMemory(deps, candidates, maxLinked, phases);
  if (mapping !== undefined) return readAll(deps, phases, requests, catalog, options, mapping);
  return findLinkedIds(deps, candidates, maxLinked, phases).then((found) =>
    readAll(deps, phases, requests, catalog, options, found),
  );
}

/** Plans each request's keys and reads them all, each once, in one store call. */
function readAll(
  deps: ProfileDeps,
  phases: Phases,
  requests: readonly ProfileRequest[],
  catalog: LoadedSnapshot<Catalog>,
  options: RenderOptions,
  mapping: MappingAnswer,
): Promise<LookedUp> {
  const plans = requests.map((r, i) => planLookup(r, mapping.matches[i], deps.registry));
  return readProfiles(deps, { catalog, options, mapping, plans }, phases);
}
