import type { Catalog } from '../../shared/catalog/catalog.js';
import { HttpError } from '../../shared/errors.js';
import type {
  HandlerContext,
  HttpEvent,
  HttpHandler,
  HttpResult,
} from '../../shared/http/http-event.js';
import { parseQueryString, type QueryParameters } from '../../shared/http/query-string.js';
import { requestLogPolicy } from '../../shared/http/request-log-policy.js';
import { httpErrorResult, internalErrorResult, jsonResult } from '../../shared/http/responses.js';
import { traceFields } from '../../shared/logger.js';
import { eventLoopDelay } from '../../shared/profiles/event-loop-delay.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { type AnswerSelection, parseAnswerSelection } from './answer-options.js';
import { apiKeyCheck } from './api-key.js';
import { batchAnswer, parseBatchBody } from './batch-get.js';
import { healthResult } from './health.js';
import { entriesOf, type ProfileEntry, planLookup } from './lookup-profiles.js';
import { openApiDocument } from './openapi.js';
import type { ProfileDeps } from './profile-deps.js';
import { type ProfileRequest, parseProfileRequest, UNKNOWN_ID } from './profile-request.js';
import { renderProfiles } from './render-profiles.js';
import { mappingThenProfiles, type Phases, timingMs, unavailable } from './request-steps.js';

/** The batch endpoint, Google API style (a custom method on the collection). */
const BATCH_PATH = '/profiles:batchGet';
const GET_METHODS = 'GET, HEAD';

/**
 * The `profile` function: `GET /?id=<id>[&type=<name>]` answers the id's profile and its linked
 * ids' profiles keyed by id; `POST /profiles:batchGet` answers many ids in one call; `GET
 * /health` reports readiness; `GET /openapi.json` describes it all. Never throws: every
 * failure is a JSON error, and anything unexpected is logged and becomes a bare 500.
 */
export function createProfileHandler(deps: ProfileDeps): HttpHandler {
  const checkApiKey = apiKeyCheck(deps.config.API_KEYS);
  const shouldLog = requestLogPolicy(deps.config.LOG_REQUESTS, deps.config.LOG_SLOW_MS);
  let openApi: string | undefined;
  const openApiJson = () => {
    openApi ??= JSON.stringify(openApiDocument(deps.registry, deps.config));
    return openApi;
  };
  return (event, context) => {
    const started = performance.now();
    const phases: Phases = {};
    const fail = (err: unknown): HttpResult => {
      if (err instanceof HttpError) return httpErrorResult(err);
      deps.log.error('profile request failed', {
        ...traceFields(event.headers, deps.config.GOOGLE_CLOUD_PROJECT),
        err,
      });
      return internalErrorResult();
    };
    const finish = (answered: HttpResult): HttpResult => {
      const total = performance.now() - started;
      phases.total = total;
      const result = withTotalTiming(answered, total);
      if (shouldLog(result.statusCode, total, errorCodeOf(answered))) {
        log(deps, event, result.statusCode, phases);
      }
      return result;
    };
    let routed: HttpResult | Promise<HttpResult>;
    try {
      checkApiKey(event.headers);
      routed = route(deps, event, context, phases, openApiJson);
    } catch (err) {
      routed = fail(err);
    }
    // No promise at all when the answer is at hand; one when it waited for a store.
    return routed instanceof Promise
      ? routed.then(finish, (err: unknown) => finish(fail(err)))
      : finish(routed);
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
  const method = event.requestContext.http.method;
  if (path === BATCH_PATH) {
    if (method !== 'POST') throw methodNotAllowed('POST');
    const params = queryOf(event);
    const items = parseBatchBody(event, deps.config);
    return whenReady(deps, context, phases, (catalog) =>
      batchAnswer(deps, items, parseAnswerSelection(params), catalog, phases),
    );
  }
  if (path !== '/' && path !== '/health' && path !== '/openapi.json') {
    throw new HttpError(
      404,
      'not_found',
      `no such path; use /?id=<id>, POST ${BATCH_PATH}, /health or /openapi.json`,
    );
  }
  if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(GET_METHODS);
  if (path === '/health') return healthResult(deps);
  if (path === '/openapi.json') {
    return jsonResult(200, openApiJson(), { 'cache-control': 'public, max-age=300' });
  }
  const params = queryOf(event);
  const request = parseProfileRequest(params, deps.registry, deps.config.MAX_ID_LENGTH);
  const selection = parseAnswerSelection(params);
  return whenReady(deps, context, phases, (catalog) =>
    answer(deps, request, selection, catalog, phases),
  );
}

/**
 * Runs `then` once the catalog and the mapping can answer: at once on a warm instance, after a
 * bounded wait for the first loads on a cold one.
 */
function whenReady(
  deps: ProfileDeps,
  context: HandlerContext,
  phases: Phases,
  then: (catalog: LoadedSnapshot<Catalog>) => HttpResult | Promise<HttpResult>,
): HttpResult | Promise<HttpResult> {
  const catalog = deps.catalog.peek();
  if (catalog && deps.mapping.version() !== undefined) {
    phases.snapshots = 0;
    return then(catalog);
  }
  const t0 = performance.now();
  return Promise.all([catalogReady(deps), mappingReady(deps)]).then(([c]) => {
    phases.snapshots = performance.now() - t0;
    if (context.signal?.aborted) throw new HttpError(503, 'aborted', 'the request was cancelled');
    return then(c);
  });
}

/**
 * One id: finds its linked ids (in memory: at once; Bigtable: at most two reads), then reads
 * every profile in ONE store call, all within REQUEST_BUDGET_MS.
 */
function answer(
  deps: ProfileDeps,
  request: ProfileRequest,
  selection: AnswerSelection,
  catalog: LoadedSnapshot<Catalog>,
  phases: Phases,
): HttpResult | Promise<HttpResult> {
  return mappingThenProfiles(
    deps,
    catalog,
    selection,
    phases,
    [request.candidates],
    deps.config.LINKED_IDS_MAX,
    (mapping) => planLookup(request, mapping.matches[0], deps.registry),
    (plan, bins, options, headers) => {
      const entries = entriesOf(plan, bins);
      if (!entries) throw UNKNOWN_ID;
      headers['x-id-type'] = (entries[0] as ProfileEntry).type.name;
      headers['x-linked-ids-total'] = String(plan.linkedTotal);
      if (plan.linkedTotal > entries.length - 1) headers['x-linked-ids-truncated'] = 'true';
      return renderProfiles(entries, options);
    },
  );
}

/** Waits (bounded) until the mapping store can answer; 503 when it cannot. */
async function mappingReady(deps: ProfileDeps): Promise<void> {
  try {
    await deps.mapping.ready(deps.config.FIRST_LOAD_TIMEOUT_MS);
  } catch (err) {
    deps.log.warn('mapping not available', { err });
    if (deps.mapping.kind === 'snapshot') {
      throw unavailable('snapshots_unavailable', 'the service is starting; retry later', deps, err);
    }
    throw unavailable(
      'mapping_unavailable',
      'the identity mapping is unavailable; retry later',
      deps,
      err,
    );
  }
}

/** The catalog, waiting (bounded) for its first load; 503 when it fails or takes too long. */
async function catalogReady(deps: ProfileDeps): Promise<LoadedSnapshot<Catalog>> {
  try {
    return await deps.catalog.getWithin(
      deps.config.FIRST_LOAD_TIMEOUT_MS,
      () => new Error('first snapshot load timed out'),
    );
  } catch (err) {
    deps.log.warn('snapshots not available', { err });
    throw unavailable('snapshots_unavailable', 'the service is starting; retry later', deps, err);
  }
}

function methodNotAllowed(allowed: string): HttpError {
  return new HttpError(405, 'method_not_allowed', `use ${allowed}`, {
    headers: { allow: allowed },
  });
}

function queryOf(event: HttpEvent): QueryParameters {
  const params = parseQueryString(event.rawQueryString);
  if (!params) {
    throw new HttpError(400, 'invalid_query', 'the query string has a malformed %-encoding');
  }
  return params;
}

function withTotalTiming(result: HttpResult, totalMs: number): HttpResult {
  const timing = result.headers['server-timing'];
  if (timing === undefined) return result;
  // Every result with a server-timing header was built for this request: add to it in place.
  (result.headers as Record<string, string>)['server-timing'] =
    `${timing}, total;dur=${timingMs(totalMs)}`;
  return result;
}

/** The request's own log line (Cloud Run writes its request log anyway; see LOG_REQUESTS). */
function log(deps: ProfileDeps, event: HttpEvent, status: number, phases: Phases): void {
  const method = event.requestContext.http.method;
  const fields = {
    ...traceFields(event.headers, deps.config.GOOGLE_CLOUD_PROJECT),
    httpRequest: {
      requestMethod: method,
      requestUrl: deps.config.LOG_USER_IDS ? requestUrl(event) : event.rawPath,
      status,
      latency: `${((phases.total ?? 0) / 1000).toFixed(6)}s`,
      userAgent: event.requestContext.http.userAgent,
    },
    phases: roundPhases(phases),
    // How late the event loop runs: what turns healthy Aerospike reads into timeouts.
    eventLoopDelay: eventLoopDelay(),
  };
  const message = `${method} ${event.rawPath} ${status}`;
  if (status >= 500) deps.log.error(message, fields);
  else if (status >= 400 && status !== 404) deps.log.warn(message, fields);
  else deps.log.info(message, fields);
}

/** The error code of an error answer (`unknown_id`...), for the log policy; no parsing of 200s. */
function errorCodeOf(result: HttpResult): string | undefined {
  if (result.statusCode < 400 || typeof result.body !== 'string') return undefined;
  return /^\{"error":\{"code":"([a-z_]+)"/.exec(result.body)?.[1];
}

function roundPhases(phases: Phases): Phases {
  const rounded: Phases = {};
  for (const name in phases) rounded[name] = Math.round((phases[name] as number) * 100) / 100;
  return rounded;
}

function requestUrl(event: HttpEvent): string {
  return event.rawQueryString ? `${event.rawPath}?${event.rawQueryString}` : event.rawPath;
}
