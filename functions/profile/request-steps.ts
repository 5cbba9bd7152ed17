import type { PooledBytes } from '../../shared/byte-writer.js';
import type { Catalog } from '../../shared/catalog/catalog.js';
import { BackendUnavailableError, HttpError, ProfileApiError } from '../../shared/errors.js';
import type { HttpResult } from '../../shared/http/http-event.js';
import { jsonResult } from '../../shared/http/responses.js';
import type { TypedId } from '../../shared/id-types.js';
import type { MappingAnswer } from '../../shared/mapping/mapping-store.js';
import type { ProfileBins, ProfileKey } from '../../shared/profiles/profile-store.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { type AnswerSelection, renderOptions } from './answer-options.js';
import type { ProfileDeps } from './profile-deps.js';
import type { RenderOptions } from './render-profiles.js';

/** Phase durations of one request, in milliseconds, for Server-Timing and the request log. */
export type Phases = Record<string, number>;

/** What an endpoint plans from the mapping's answer: at least the profile keys to read. */
export interface ProfilePlan {
  readonly keys: readonly ProfileKey[];
}

/** The answer's body from the records read (in key order); may add its own headers. */
export type RenderStep<P extends ProfilePlan> = (
  plan: P,
  bins: readonly (ProfileBins | undefined)[],
  options: RenderOptions,
  headers: Record<string, string>,
) => string | PooledBytes;

/**
 * The path of every lookup (GET and batchGet): the linked ids of all `requests` in ONE mapping
 * call, then the keys `plan` derives from them in ONE profile-store call with what is left of
 * REQUEST_BUDGET_MS, then `render`; each phase timed, the versions and server-timing in the
 * headers. 503 when a store cannot answer. Synchronous as long as the stores are; the steps are
 * named functions, so the sync path makes no closure beyond the caller's `plan` and `render`.
 */
export function mappingThenProfiles<P extends ProfilePlan>(
  deps: ProfileDeps,
  catalog: LoadedSnapshot<Catalog>,
  selection: AnswerSelection,
  phases: Phases,
  requests: readonly (readonly TypedId[])[],
  maxLinked: number,
  plan: (mapping: MappingAnswer) => P,
  render: RenderStep<P>,
): HttpResult | Promise<HttpResult> {
  const t0 = performance.now();
  const options = renderOptions(selection, catalog.value, deps);
  const found = deps.mapping.find(requests, maxLinked, deps.config.REQUEST_BUDGET_MS);
  if (found instanceof Promise) {
    return found.then(
      (mapping) => readProfiles(deps, catalog, phases, t0, options, mapping, plan, render),
      (err: unknown) => mappingFailed(deps, err),
    );
  }
  return readProfiles(deps, catalog, phases, t0, options, found, plan, render);
}

function readProfiles<P extends ProfilePlan>(
  deps: ProfileDeps,
  catalog: LoadedSnapshot<Catalog>,
  phases: Phases,
  t0: number,
  options: RenderOptions,
  mapping: MappingAnswer,
  plan: (mapping: MappingAnswer) => P,
  render: RenderStep<P>,
): HttpResult | Promise<HttpResult> {
  const t1 = performance.now();
  phases.mapping = t1 - t0;
  const planned = plan(mapping);
  const budgetMs = Math.max(1, deps.config.REQUEST_BUDGET_MS - (t1 - t0));
  let read: ReturnType<ProfileDeps['store']['getMany']>;
  try {
    read = deps.store.getMany(planned.keys, { timeoutMs: budgetMs });
  } catch (err) {
    return storeFailed(deps, err);
  }
  if (read instanceof Promise) {
    return read.then(
      (bins) => answered(catalog, phases, t1, options, mapping, planned, bins, render),
      (err: unknown) => storeFailed(deps, err),
    );
  }
  return answered(catalog, phases, t1, options, mapping, planned, read, render);
}

function answered<P extends ProfilePlan>(
  catalog: LoadedSnapshot<Catalog>,
  phases: Phases,
  t1: number,
  options: RenderOptions,
  mapping: MappingAnswer,
  planned: P,
  bins: readonly (ProfileBins | undefined)[],
  render: RenderStep<P>,
): HttpResult {
  const t2 = performance.now();
  phases.store = t2 - t1;
  const headers: Record<string, string> = {
    'x-catalog-version': catalog.manifest.version,
    'x-mapping-version': mapping.version,
  };
  const body = render(planned, bins, options, headers);
  phases.render = performance.now() - t2;
  headers['server-timing'] = serverTiming(phases);
  return jsonResult(200, body, headers);
}

function mappingFailed(deps: ProfileDeps, err: unknown): never {
  if (!(err instanceof ProfileApiError)) throw err;
  deps.log.warn('mapping store unavailable', { err });
  throw unavailable(
    'mapping_unavailable',
    'the identity mapping is unavailable; retry later',
    deps,
  );
}

function storeFailed(deps: ProfileDeps, err: unknown): never {
  // Anything but "unavailable for now" (a store that refuses the request as configured: unknown
  // namespace, security...) is logged at ERROR by the handler and answered with a bare 500.
  if (!(err instanceof BackendUnavailableError)) throw err;
  deps.log.warn('profile store unavailable', { err });
  throw unavailable('store_unavailable', 'the profile store is unavailable; retry later', deps);
}

/** A 503 that tells the caller when to retry (RETRY_AFTER_SECS). */
export function unavailable(
  code: string,
  message: string,
  deps: ProfileDeps,
  cause?: unknown,
): HttpError {
  return new HttpError(503, code, message, {
    headers: { 'retry-after': String(deps.config.RETRY_AFTER_SECS) },
    cause,
  });
}

/** `server-timing` from the phases measured so far (`total` is added at the end). */
function serverTiming(phases: Phases): string {
  let timing = '';
  for (const name in phases) {
    timing += `${timing ? ', ' : ''}${name};dur=${timingMs(phases[name] as number)}`;
  }
  return timing;
}

/**
 * A duration in milliseconds with two decimals, as `toFixed(2)` writes it (up to how a
 * half-hundredth rounds): integers only, which print from V8's cache of small numbers where
 * toFixed goes through the runtime on every call, five times per answer.
 */
export function timingMs(ms: number): string {
  const hundredths = Math.round(ms * 100);
  if (!(hundredths >= 0 && hundredths < 2 ** 31)) return ms.toFixed(2);
  const whole = Math.floor(hundredths / 100);
  const rest = hundredths - whole * 100;
  return rest < 10 ? `${whole}.0${rest}` : `${whole}.${rest}`;
}
