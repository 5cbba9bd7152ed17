import type { Catalog } from '../../shared/catalog/catalog.js';
import { withDeadline } from '../../shared/deadline.js';
import { HttpError, ProfileApiError } from '../../shared/errors.js';
import type {
  HandlerContext,
  HttpEvent,
  HttpHandler,
  HttpResult,
} from '../../shared/http/http-event.js';
import { httpErrorResult, internalErrorResult, jsonResult } from '../../shared/http/responses.js';
import { traceFields } from '../../shared/logger.js';
import type { MappingAnswer } from '../../shared/mapping/mapping-store.js';
import type { RefreshingCache } from '../../shared/refreshing-cache.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { apiKeyCheck } from './api-key.js';
import { healthResult } from './health.js';
import { entriesOf, type LookupPlan, type ProfileEntry, planLookup } from './lookup-profiles.js';
import { openApiDocument } from './openapi.js';
import type { ProfileDeps } from './profile-deps.js';
import { type ProfileRequest, parseProfileRequest } from './profile-request.js';
import { renderProfiles } from './render-profiles.js';

const ALLOWED_METHODS = 'GET, HEAD';

/** Phase durations of one request, in milliseconds, for Server-Timing and the request log. */
type Phases = Record<string, number>;

/**
 * The `profile` function: `GET /?id=<id>[&type=<name>]` answers the id's profile and its linked
 * ids' profiles keyed by id; `GET /health` reports readiness. Never throws: every failure is a
 * JSON error, and anything unexpected is logged and becomes a bare 500.
 */
export function createProfileHandler(deps: ProfileDeps): HttpHandler {
  const checkApiKey = apiKeyCheck(deps.config.API_KEYS);
  let openApi: string | undefined;
  const openApiJson = () => {
    openApi ??= JSON.stringify(openApiDocument(deps.registry, deps.config.MAX_ID_LENGTH));
    return openApi;
  };
  return (event, context) => {
    const started = performance.now();
    const phases: Phases = {};
    const trace = traceFields(event.headers, deps.config.GOOGLE_CLOUD_PROJECT);
    const fail = (err: unknown): HttpResult => {
      if (err instanceof HttpError) return httpErrorResult(err);
      deps.log.error('profile request failed', { ...trace, err });
      return internalErrorResult();
    };
    const finish = (answered: HttpResult): HttpResult => {
      phases.total = performance.now() - started;
      const result = withTotalTiming(answered, phases.total);
      deps.log.info(`${event.requestContext.http.method} ${event.rawPath} ${result.statusCode}`, {
        ...trace,
        httpRequest: {
          requestMethod: event.requestContext.http.method,
          requestUrl: deps.config.LOG_USER_IDS ? requestUrl(event) : event.rawPath,
          status: result.statusCode,
          latency: `${(phases.total / 1000).toFixed(6)}s`,
          userAgent: event.requestContext.http.userAgent,
        },
        phases: roundPhases(phases),
      });
      return result;
    };
    let routed: HttpResult | Promise<HttpResult>;
    try {
      checkApiKey(event.headers);
      routed = route(deps, event, context, phases, openApiJson);
    } catch (err) {
      routed = fail(err);
    }
    // One promise per request when the answer is at hand, two when it waited for the store.
    return routed instanceof Promise
      ? routed.then(finish, (err: unknown) => finish(fail(err)))
      : Promise.resolve(finish(routed));
  };
}

// The request path returns plain values where it can: functions-framework runs each request in
// a domain, which makes every promise created on the way cost an async-hook call.
function route(
  deps: ProfileDeps,
  event: HttpEvent,
  context: HandlerContext,
  phases: Phases,
  openApiJson: () => string,
): HttpResult | Promise<HttpResult> {
  const path = event.rawPath.length > 1 ? event.rawPath.replace(/\/+$/, '') : '/';
  if (path !== '/' && path !== '/health' && path !== '/openapi.json') {
    throw new HttpError(404, 'not_found', 'no such path; use /?id=<id>, /health or /openapi.json');
  }
  const method = event.requestContext.http.method;
  if (method !== 'GET' && method !== 'HEAD') {
    throw new HttpError(405, 'method_not_allowed', `use ${ALLOWED_METHODS}`, {
      headers: { allow: ALLOWED_METHODS },
    });
  }
  if (path === '/health') return healthResult(deps);
  if (path === '/openapi.json') {
    return jsonResult(200, openApiJson(), { 'cache-control': 'public, max-age=300' });
  }
  return profileResult(deps, event, context, phases);
}

function profileResult(
  deps: ProfileDeps,
  event: HttpEvent,
  context: HandlerContext,
  phases: Phases,
): HttpResult | Promise<HttpResult> {
  const { config } = deps;
  const request = parseProfileRequest(event.rawQueryString, deps.registry, config.MAX_ID_LENGTH);
  const catalog = deps.catalog.peek();
  if (!catalog || deps.mapping.version() === undefined) {
    // Cold instance: wait (bounded) for the first loads, then answer as usual.
    const t0 = performance.now();
    return Promise.all([
      ready(deps.catalog, config.FIRST_LOAD_TIMEOUT_MS, config.RETRY_AFTER_SECS, deps),
      mappingReady(deps),
    ]).then(([c]) => {
      phases.snapshots = performance.now() - t0;
      if (context.signal?.aborted) throw new HttpError(503, 'aborted', 'the request was cancelled');
      return answer(deps, request, c, phases);
    });
  }
  phases.snapshots = 0;
  return answer(deps, request, catalog, phases);
}

/**
 * Finds the linked ids (in memory: at once; Bigtable: at most two reads), then reads every
 * profile in ONE store call, all within REQUEST_BUDGET_MS.
 */
function answer(
  deps: ProfileDeps,
  request: ProfileRequest,
  catalog: LoadedSnapshot<Catalog>,
  phases: Phases,
): Promise<HttpResult> {
  const { config } = deps;
  const t0 = performance.now();
  const found = deps.mapping.find(
    request.candidates,
    config.LINKED_IDS_MAX,
    config.REQUEST_BUDGET_MS,
  );
  const withLinks = (mapping: MappingAnswer) => {
    const t1 = performance.now();
    phases.mapping = t1 - t0;
    const plan = planLookup(request, mapping.match, deps.registry);
    const budgetMs = Math.max(1, config.REQUEST_BUDGET_MS - (t1 - t0));
    return readProfiles(deps, plan, catalog, mapping.version, phases, t1, budgetMs);
  };
  if (!(found instanceof Promise)) return withLinks(found);
  return found.then(withLinks, (err: unknown) => {
    if (!(err instanceof ProfileApiError)) throw err;
    deps.log.warn('mapping store unavailable', { err });
    throw unavailable(
      'mapping_unavailable',
      'the identity mapping is unavailable; retry later',
      deps,
    );
  });
}

function readProfiles(
  deps: ProfileDeps,
  plan: LookupPlan,
  catalog: LoadedSnapshot<Catalog>,
  mappingVersion: string,
  phases: Phases,
  t1: number,
  budgetMs: number,
): Promise<HttpResult> {
  const { config } = deps;
  return deps.store.getMany(plan.keys, { timeoutMs: budgetMs }).then(
    (bins) => {
      const t2 = performance.now();
      phases.store = t2 - t1;
      const entries = entriesOf(plan, bins);
      if (!entries) throw new HttpError(404, 'unknown_id', 'no profile is known for this id');
      const body = renderProfiles(
        entries,
        catalog.value,
        config.SEGMENTS_BIN,
        Math.floor(deps.now() / 1000),
      );
      phases.render = performance.now() - t2;
      const headers: Record<string, string> = {
        'x-catalog-version': catalog.manifest.version,
        'x-mapping-version': mappingVersion,
        'x-id-type': (entries[0] as ProfileEntry).type.name,
        'x-linked-ids-total': String(plan.linkedTotal),
        'server-timing': serverTiming(phases),
      };
      if (plan.linkedTotal > entries.length - 1) headers['x-linked-ids-truncated'] = 'true';
      return jsonResult(200, body, headers);
    },
    (err: unknown) => {
      if (!(err instanceof ProfileApiError)) throw err;
      deps.log.warn('profile store unavailable', { err });
      throw unavailable('store_unavailable', 'the profile store is unavailable; retry later', deps);
    },
  );
}

/** Waits (bounded) until the mapping store can answer; 503 when it cannot. */
async function mappingReady(deps: ProfileDeps): Promise<void> {
  try {
    await deps.mapping.ready(deps.config.FIRST_LOAD_TIMEOUT_MS);
  } catch (err) {
    deps.log.warn('mapping not available', { err });
    const snapshot = deps.mapping.kind === 'snapshot';
    throw new HttpError(
      503,
      snapshot ? 'snapshots_unavailable' : 'mapping_unavailable',
      snapshot
        ? 'the service is starting; retry later'
        : 'the identity mapping is unavailable; retry later',
      { headers: { 'retry-after': String(deps.config.RETRY_AFTER_SECS) }, cause: err },
    );
  }
}

/** The cache's value, waiting (bounded) for the first load; 503 when it fails or takes too long. */
async function ready<V>(
  cache: RefreshingCache<V>,
  timeoutMs: number,
  retryAfterSecs: number,
  deps: ProfileDeps,
): Promise<V> {
  const current = cache.peek();
  if (current !== undefined) return current;
  try {
    return await withDeadline(
      cache.get(),
      timeoutMs,
      () => new Error('first snapshot load timed out'),
    );
  } catch (err) {
    deps.log.warn('snapshots not available', { err });
    throw new HttpError(503, 'snapshots_unavailable', 'the service is starting; retry later', {
      headers: { 'retry-after': String(retryAfterSecs) },
      cause: err,
    });
  }
}

function unavailable(code: string, message: string, deps: ProfileDeps): HttpError {
  return new HttpError(503, code, message, {
    headers: { 'retry-after': String(deps.config.RETRY_AFTER_SECS) },
  });
}

function serverTiming(phases: Phases): string {
  let timing = '';
  for (const name in phases) {
    timing += `${timing ? ', ' : ''}${name};dur=${(phases[name] as number).toFixed(2)}`;
  }
  return timing;
}

function withTotalTiming(result: HttpResult, totalMs: number): HttpResult {
  const timing = result.headers['server-timing'];
  if (timing === undefined) return result;
  const headers = {
    ...result.headers,
    'server-timing': `${timing}, total;dur=${totalMs.toFixed(2)}`,
  };
  return { ...result, headers };
}

function roundPhases(phases: Phases): Phases {
  const rounded: Phases = {};
  for (const name in phases) rounded[name] = Math.round((phases[name] as number) * 100) / 100;
  return rounded;
}

function requestUrl(event: HttpEvent): string {
  return event.rawQueryString ? `${event.rawPath}?${event.rawQueryString}` : event.rawPath;
}
