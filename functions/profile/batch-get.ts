import { ByteWriter, type PooledBytes } from '../../shared/byte-writer.js';
import { HttpError } from '../../shared/errors.js';
import {
  type HandlerContext,
  type HttpEvent,
  type HttpResult,
  requestBody,
} from '../../shared/http/http-event.js';
import type { QueryParameters } from '../../shared/http/query-string.js';
import { parseAnswerSelection } from './answer-options.js';
import type { ProfileConfig } from './config.js';
import { type LookedUp, lookUp } from './lookup.js';
import { lookupAnswer } from './lookup-answer.js';
import { entriesOf, type LookupPlan } from './lookup-plan.js';
import type { ProfileDeps } from './profile-deps.js';
import {
  idProblem,
  type ProfileRequest,
  resolveId,
  UNKNOWN_ID,
  unknownType,
} from './profile-request.js';
import { renderProfilesInto, WrittenProfiles } from './render-profiles.js';
import type { RequestSchemas } from './request-schemas.js';
import type { Phases } from './server-timing.js';

/** One requested id of a batch as the body gave it: checked item by item. */
export type BatchItem = { readonly id: unknown; readonly type?: unknown };

const SHAPE = 'expected {"ids": [{"id": "<id>", "type": "<id type name>"}, ...]} (type optional)';

/** 415 unless the body is declared JSON: checked before the body is read. */
export function checkBatchContentType(event: HttpEvent): void {
  const type = event.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(415, 'unsupported_media_type', 'send the body as application/json');
  }
}

/**
 * Reads a `POST /profiles:batchGet` body (once: nothing parsed it before), checked with its
 * request schema. The whole call is refused (400) when the body is not JSON, not of the
 * documented shape, has no ids or more than BATCH_MAX_IDS. Items are checked later, each on its
 * own (the schema's item issues are theirs): one bad id never fails the others.
 */
export function parseBatchBody(raw: Buffer, schemas: RequestSchemas): BatchItem[] {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid JSON');
  }
  const checked = schemas.batchBody.safeParse(body);
  if (!checked.success) {
    for (const issue of checked.error.issues) {
      if (issue.path.length > 2) continue; // within an item: that item's own error
      if (issue.path.length === 2 && issue.path[0] === 'ids') continue;
      if (issue.path[0] === 'ids' && issue.code === 'too_small') {
        throw new HttpError(400, 'no_ids', 'ids is empty');
      }
      if (issue.path[0] === 'ids' && issue.code === 'too_big') {
        throw new HttpError(
          400,
          'too_many_ids',
          `at most ${issue.maximum} ids per call (BATCH_MAX_IDS); got ${(body as { ids: unknown[] }).ids.length}`,
        );
      }
      throw new HttpError(400, 'invalid_body', SHAPE);
    }
  }
  return (body as { ids: BatchItem[] }).ids;
}

/** One item after its own checks: a lookup to run, or its own error answer. */
type Checked =
  | { readonly ok: true; readonly id: string; readonly request: ProfileRequest }
  | { readonly ok: false; readonly id: string | null; readonly error: HttpError };

/**
 * `POST /profiles:batchGet`: many ids in one call, through the steps GET takes (parse, wait for
 * readiness, find linked ids, plan, read, render), each step for all ids at once: every item's
 * linked ids in ONE mapping lookup (Bigtable: two reads for the whole batch), then ALL profiles
 * (requested and linked ids, deduplicated) in ONE profile-store read under one deadline; a store
 * failure fails the whole call (503), never a partial 200. Results come in request order,
 * duplicates answered each time.
 *
 * What one call costs is bounded whatever it asks: at most BATCH_MAX_PROFILES reads (an id
 * without a type counts once per type it may be: the reads it needs when the mapping does not
 * know it; each id's linked ids are capped, LINKED_IDS_MAX and less, to stay within), each
 * profile rendered once however many results hold it, and at most BATCH_MAX_ANSWER_BYTES of
 * profiles in the answer: from the first result that would pass it, results are 413
 * `answer_too_large` (error results echo their ids: the answer may pass the bound by those).
 */
export async function batchGet(
  deps: ProfileDeps,
  schemas: RequestSchemas,
  event: HttpEvent,
  params: QueryParameters,
  context: HandlerContext,
  phases: Phases,
): Promise<HttpResult> {
  const { config } = deps;
  const selection = parseAnswerSelection(params, schemas);
  checkBatchContentType(event);
  // The body is read here, past the key check and the route: nowhere else is one accepted.
  const body = await requestBody(event, context, config.REQUEST_BUDGET_MS);
  const checked = parseBatchBody(body, schemas).map((item) => check(item, deps, schemas));
  const valid = checked.flatMap((c) => (c.ok ? [c.request] : []));
  const found = await lookUp(deps, context, phases, valid, selection, linkedPerId(valid, config));
  const t0 = performance.now();
  const answer = renderResults(checked, found, config);
  phases.render = performance.now() - t0;
  return lookupAnswer(found.catalog, found.mapping, phases, answer);
}

/** Each id's linked ids, capped so that the whole call reads at most BATCH_MAX_PROFILES. */
function linkedPerId(
  valid: readonly ProfileRequest[],
  config: Pick<ProfileConfig, 'BATCH_MAX_PROFILES' | 'LINKED_IDS_MAX'>,
): number {
  let reserved = 0;
  for (const request of valid) reserved += request.candidates.length;
  if (reserved > config.BATCH_MAX_PROFILES) {
    throw new HttpError(
      400,
      'too_many_profiles',
      `these ids need up to ${reserved} profile reads (an id without a type is read once per type it may be); ` +
        `at most ${config.BATCH_MAX_PROFILES} per call (BATCH_MAX_PROFILES): give the types, or send fewer ids`,
    );
  }
  return Math.min(
    config.LINKED_IDS_MAX,
    Math.floor((config.BATCH_MAX_PROFILES - reserved) / Math.max(1, valid.length)),
  );
}

/** `{"results": [...]}`: one result per item, in request order (see batchGet for the bounds). */
function renderResults(
  checked: readonly Checked[],
  found: LookedUp,
  config: Pick<ProfileConfig, 'BATCH_MAX_ANSWER_BYTES'>,
): PooledBytes {
  const out = new ByteWriter().text('{"results":[');
  const written = new WrittenProfiles();
  let next = 0;
  let full = false;
  checked.forEach((item, n) => {
    if (n > 0) out.text(',');
    const mark = out.length;
    if (!item.ok) {
      out.text(errorResult(item.id, item.error));
      return;
    }
    const plan = found.plans[next] as LookupPlan;
    const entries = entriesOf(plan, found.records[next++] ?? []);
    if (!entries || full) {
      out.text(errorResult(item.id, entries ? answerTooLarge(config) : UNKNOWN_ID));
      return;
    }
    const truncated = plan.linkedTotal > entries.length - 1;
    out.text(`{"id":${JSON.stringify(item.id)},"status":200,"profiles":`);
    renderProfilesInto(out, entries, found.options, written);
    out.text(`,"linkedIds":{"total":${plan.linkedTotal},"truncated":${truncated}}}`);
    if (out.length > config.BATCH_MAX_ANSWER_BYTES) {
      // Nothing is rendered after this: no copy is made of the profiles dropped with it.
      out.truncate(mark).text(errorResult(item.id, answerTooLarge(config)));
      full = true;
    }
  });
  return out.text(']}').take();
}

function answerTooLarge(config: Pick<ProfileConfig, 'BATCH_MAX_ANSWER_BYTES'>): HttpError {
  return new HttpError(
    413,
    'answer_too_large',
    `the answer reached ${config.BATCH_MAX_ANSWER_BYTES} bytes (BATCH_MAX_ANSWER_BYTES): ask for this id in another call`,
  );
}

/** One item, checked with the batch item's request schema, then as the id types it may be. */
function check(item: BatchItem, deps: ProfileDeps, schemas: RequestSchemas): Checked {
  const shown = typeof item?.id === 'string' ? item.id : null;
  const checked = schemas.batchItem.safeParse(item);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const field = issue?.path[0];
    let error: HttpError;
    if (field === 'id' && issue?.code !== 'invalid_type') {
      error = idProblem(issue?.code, schemas);
    } else if (field === 'type') {
      error =
        issue?.code === 'invalid_value'
          ? unknownType(deps.registry)
          : badItem('type is an id type name (a string)');
    } else {
      error = badItem('each item is {"id": "<id>", "type": "<type>"}');
    }
    return { ok: false, id: shown, error };
  }
  const { id, type } = checked.data as { id: string; type?: string };
  try {
    return { ok: true, id, request: resolveId(id, type, deps.registry) };
  } catch (err) {
    if (err instanceof HttpError) return { ok: false, id: shown, error: err };
    throw err;
  }
}

function errorResult(id: string | null, error: HttpError): string {
  return JSON.stringify({
    id,
    status: error.statusCode,
    error: { code: error.code, message: error.message },
  });
}

function badItem(message: string): HttpError {
  return new HttpError(400, 'invalid_item', message);
}
