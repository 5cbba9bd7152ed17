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
import type { RefreshingCache } from '../../shared/refreshing-cache.js';
import { healthResult } from './health.js';
import { lookupProfiles } from './lookup-profiles.js';
import { openApiDocument } from './openapi.js';
import type { ProfileDeps } from './profile-deps.js';
import { parseProfileRequest } from './profile-request.js';
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
  let openApi: string | undefined;
  const openApiJson = () => {
    openApi ??= JSON.stringify(openApiDocument(deps.registry, deps.config.MAX_ID_LENGTH));
    return openApi;
  };
  return async (event, context) => {
    const started = performance.now();
    const phases: Phases = {};
    const log = deps.log.child(traceFields(event.headers, deps.config.GOOGLE_CLOUD_PROJECT));
    let result: HttpResult;
    try {
      result = await route(deps, event, context, phases, openApiJson);
    } catch (err) {
      if (err instanceof HttpError) {
        result = httpErrorResult(err);
      } else {
        log.error('profile request failed', { err });
        result = internalErrorResult();
      }
    }
    phases.total = performance.now() - started;
    result = withTotalTiming(result, phases.total);
    log.info(`${event.requestContext.http.method} ${event.rawPath} ${result.statusCode}`, {
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
}

async function route(
  deps: ProfileDeps,
  event: HttpEvent,
  context: HandlerContext,
  phases: Phases,
  openApiJson: () => string,
): Promise<HttpResult> {
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

async function profileResult(
  deps: ProfileDeps,
  event: HttpEvent,
  context: HandlerContext,
  phases: Phases,
): Promise<HttpResult> {
  const { config } = deps;
  const request = parseProfileRequest(event.rawQueryString, deps.registry, config.MAX_ID_LENGTH);

  const t0 = performance.now();
  const [catalog, mapping] = await Promise.all([
    ready(deps.catalog, config.FIRST_LOAD_TIMEOUT_MS, config.RETRY_AFTER_SECS, deps),
    ready(deps.mapping, config.FIRST_LOAD_TIMEOUT_MS, config.RETRY_AFTER_SECS, deps),
  ]);
  phases.snapshots = performance.now() - t0;
  if (context.signal?.aborted) throw new HttpError(503, 'aborted', 'the request was cancelled');

  let lookup: Awaited<ReturnType<typeof lookupProfiles>>;
  try {
    lookup = await lookupProfiles(request, mapping.value, deps.store, deps.registry, {
      maxLinked: config.LINKED_IDS_MAX,
      storeTimeoutMs: config.REQUEST_BUDGET_MS,
    });
  } catch (err) {
    if (!(err instanceof ProfileApiError)) throw err;
    deps.log.warn('profile store unavailable', { err });
    throw unavailable('store_unavailable', 'the profile store is unavailable; retry later', deps);
  }
  if (!lookup) throw new HttpError(404, 'unknown_id', 'no profile is known for this id');
  phases.mapping = lookup.mappingMs;
  phases.store = lookup.storeMs;

  const t1 = performance.now();
  const body = renderProfiles(
    lookup.entries,
    catalog.value,
    config.SEGMENTS_BIN,
    Math.floor(deps.now() / 1000),
  );
  phases.render = performance.now() - t1;

  const linkedReturned = lookup.entries.length - 1;
  const headers: Record<string, string> = {
    'x-catalog-version': catalog.manifest.version,
    'x-mapping-version': mapping.manifest.version,
    'x-id-type': (lookup.entries[0] as { type: { name: string } }).type.name,
    'x-linked-ids-total': String(lookup.linkedTotal),
    'server-timing': serverTiming(phases),
  };
  if (lookup.linkedTotal > linkedReturned) headers['x-linked-ids-truncated'] = 'true';
  return jsonResult(200, body, headers);
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
  return Object.entries(phases)
    .map(([name, ms]) => `${name};dur=${ms.toFixed(2)}`)
    .join(', ');
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
  return Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(v * 100) / 100]));
}

function requestUrl(event: HttpEvent): string {
  return event.rawQueryString ? `${event.rawPath}?${event.rawQueryString}` : event.rawPath;
}
