import type { HandlerContext, HttpResult } from '../../shared/http/http-event.js';
import type { QueryParameters } from '../../shared/http/query-string.js';
import { parseAnswerSelection } from './answer-options.js';
import { type LookedUp, lookUp } from './lookup.js';
import { lookupAnswer } from './lookup-answer.js';
import { entriesOf, type LookupPlan, type ProfileEntry } from './lookup-plan.js';
import type { ProfileDeps } from './profile-deps.js';
import { parseProfileRequest, UNKNOWN_ID } from './profile-request.js';
import { renderProfiles } from './render-profiles.js';
import type { RequestSchemas } from './request-schemas.js';
import type { Phases } from './server-timing.js';

/**
 * `GET /?id=<id>[&type=<name>]`: the id's profile and its linked ids' profiles, keyed by id.
 * Parse the request, look it up (lookup.ts: readiness, linked ids, one store read), render.
 * The lookup's promise is chained, not awaited: see lookUp.
 */
export function getProfile(
  deps: ProfileDeps,
  schemas: RequestSchemas,
  params: QueryParameters,
  context: HandlerContext,
  phases: Phases,
): Promise<HttpResult> {
  const request = parseProfileRequest(params, deps.registry, schemas);
  const selection = parseAnswerSelection(params, schemas);
  const maxLinked = deps.config.LINKED_IDS_MAX;
  return lookUp(deps, context, phases, [request], selection, maxLinked).then((found) =>
    answer(found, phases),
  );
}

/** The answer to a GET from what its lookup found: 404 when no store knows the id. */
function answer(found: LookedUp, phases: Phases): HttpResult {
  const plan = found.plans[0] as LookupPlan;
  const entries = entriesOf(plan, found.records[0] ?? []);
  if (!entries) throw UNKNOWN_ID;
  const t0 = performance.now();
  const body = renderProfiles(entries, found.options);
  phases.render = performance.now() - t0;
  return lookupAnswer(found.catalog, found.mapping, phases, body, {
    'x-id-type': (entries[0] as ProfileEntry).type.name,
    'x-linked-ids-total': String(plan.linkedTotal),
    ...(plan.linkedTotal > entries.length - 1 ? { 'x-linked-ids-truncated': 'true' } : {}),
  });
}
