import type { HandlerContext, HttpResult } from '../../shared/http/http-event.js';
import type { QueryParameters } from '../../shared/http/query-string.js';
import { parseAnswerSelection, renderOptions } from './answer-options.js';
import { findLinkedIds, linkedIdsInMemory } from './linked-ids.js';
import { lookupAnswer } from './lookup-answer.js';
import { entriesOf, type ProfileEntry, planLookup } from './lookup-plan.js';
import type { ProfileDeps } from './profile-deps.js';
import { readProfiles } from './profile-reads.js';
import { parseProfileRequest, UNKNOWN_ID } from './profile-request.js';
import { readyNow, whenReady } from './readiness.js';
import { renderProfiles } from './render-profiles.js';
import { requestSchemas } from './request-schemas.js';
import type { Phases } from './server-timing.js';

/**
 * `GET /?id=<id>[&type=<name>]`: the id's profile and its linked ids' profiles, keyed by id.
 * Every step returns data to this one, in order: parse, wait for readiness, find the linked
 * ids (in memory: at once; Bigtable: at most two reads), plan the keys, read every profile in
 * ONE store call (all within REQUEST_BUDGET_MS), render.
 */
export async function getProfile(
  deps: ProfileDeps,
  params: QueryParameters,
  context: HandlerContext,
  phases: Phases,
): Promise<HttpResult> {
  const schemas = requestSchemas(deps.registry, deps.config);
  const request = parseProfileRequest(params, deps.registry, schemas);
  const selection = parseAnswerSelection(params, schemas);
  const catalog = readyNow(deps, phases) ?? (await whenReady(deps, context, phases));
  const options = renderOptions(selection, catalog.value, deps);
  const requests = [request.candidates];
  const maxLinked = deps.config.LINKED_IDS_MAX;
  const mapping =
    linkedIdsInMemory(deps, requests, maxLinked, phases) ??
    (await findLinkedIds(deps, requests, maxLinked, phases));
  const plan = planLookup(request, mapping.matches[0], deps.registry);
  const bins = await readProfiles(deps, plan.keys, phases);
  const entries = entriesOf(plan, bins);
  if (!entries) throw UNKNOWN_ID;
  const t0 = performance.now();
  const body = renderProfiles(entries, options);
  phases.render = performance.now() - t0;
  return lookupAnswer(catalog, mapping, phases, body, {
    'x-id-type': (entries[0] as ProfileEntry).type.name,
    'x-linked-ids-total': String(plan.linkedTotal),
    ...(plan.linkedTotal > entries.length - 1 ? { 'x-linked-ids-truncated': 'true' } : {}),
  });
}
