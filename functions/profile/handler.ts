import { HttpError } from '../../shared/errors.js';
import type {
  HandlerContext,
  HttpEvent,
  HttpHandler,
  HttpResult,
} from '../../shared/http/http-event.js';
import { parseQueryString, type QueryParameters } from '../../shared/http/query-string.js';
import { httpErrorResult, internalErrorResult, jsonResult } from '../../shared/http/responses.js';
import { traceFields } from '../../shared/logger.js';
import { apiKeyCheck, apiKeyMatcher } from './api-key.js';
import { batchGet } from './batch-get.js';
import { getProfile } from './get-profile.js';
import { healthResult } from './health.js';
import { openApiDocument } from './openapi.js';
import type { ProfileDeps } from './profile-deps.js';
import { RequestLog } from './request-log.js';
import { requestSchemas } from './request-schemas.js';
import { type Phases, withTotalTiming } from './server-timing.js';

/** The batch endpoint, Google API style (a custom method on the collection). */
const BATCH_PATH = '/profiles:batchGet';
const GET_METHODS = 'GET, HEAD';
/** The paths served: a request log line names one of them, or `other`, never a raw path. */
const ROUTES: ReadonlySet<string> = new Set(['/', BATCH_PATH, '/health', '/openapi.json']);

/**
 * The `profile` function: `GET /?id=<id>[&type=<name>]` answers the id's profile and its linked
 * ids' profiles keyed by id (get-profile.ts); `POST /profiles:batchGet` answers many ids in one
 * call (batch-get.ts); `GET /health` reports readiness; `GET /openapi.json` describes it all.
 * Checks the API key, routes, then answers and logs. Never throws: every failure is a JSON
 * error, and anything unexpected is logged and becomes a bare 500.
 */
export function createProfileHandler(deps: ProfileDeps): HttpHandler {
  const checkApiKey = apiKeyCheck(deps.config.API_KEYS, deps.config.OPERATOR_API_KEYS);
  const isOperator = apiKeyMatcher(deps.config.OPERATOR_API_KEYS);
  // No operator keys: details for anyone on a local run, for nobody once deployed.
  const healthDetail =
    deps.config.OPERATOR_API_KEYS.length > 0
      ? isOperator
      : () => deps.config.NODE_ENV !== 'production';
  const requestLog = new RequestLog(deps.config, deps.log);
  const schemas = requestSchemas(deps.registry, deps.config);
  const retryAfter = String(deps.config.RETRY_AFTER_SECS);
  let openApi: string | undefined;
  const openApiJson = () => {
    openApi ??= JSON.stringify(openApiDocument(deps.registry, deps.config));
    return openApi;
  };

  /** Routes a request whose key passed. */
  const route = (
    event: HttpEvent,
    path: string,
    context: HandlerContext,
    phases: Phases,
  ): Promise<HttpResult> | HttpResult => {
    const method = event.requestContext.http.method;
    if (path === BATCH_PATH) {
      if (method !== 'POST') throw methodNotAllowed('POST');
      return batchGet(deps, schemas, event, queryOf(event), context, phases);
    }
    if (!ROUTES.has(path)) {
      throw new HttpError(
        404,
        'not_found',
        `no such path; use /?id=<id>, POST ${BATCH_PATH}, /health or /openapi.json`,
      );
    }
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(GET_METHODS);
    if (path === '/health') return healthResult(deps, healthDetail(event.headers));
    if (path === '/openapi.json') {
      return jsonResult(200, openApiJson(), { 'cache-control': 'public, max-age=300' });
    }
    return getProfile(deps, schemas, queryOf(event), context, phases);
  };

  return (event, context) => {
    const started = performance.now();
    const phases: Phases = {};
    const path = withoutTrailingSlashes(event.rawPath);
    let errorCode: string | undefined;
    const failed = (err: unknown): HttpResult => {
      if (err instanceof HttpError) {
        errorCode = err.code;
        const result = httpErrorResult(err);
        // Every 503 says when to retry.
        if (err.statusCode === 503) {
          (result.headers as Record<string, string>)['retry-after'] = retryAfter;
        }
        return result;
      }
      deps.log.error('profile request failed', {
        ...traceFields(event.headers, deps.config.GOOGLE_CLOUD_PROJECT),
        err,
      });
      errorCode = 'internal';
      return internalErrorResult();
    };
    const finish = (result: HttpResult): HttpResult => {
      const total = performance.now() - started;
      phases.total = total;
      const logged = ROUTES.has(path) ? path : 'other';
      requestLog.answered({ event, route: logged, status: result.statusCode, errorCode, phases });
      return withTotalTiming(result, total);
    };
    let routed: Promise<HttpResult> | HttpResult;
    try {
      checkApiKey(event.headers);
      routed = route(event, path, context, phases);
    } catch (err) {
      routed = failed(err);
    }
    // One promise per request here (Promise.resolve keeps a promise as it is): see readProfiles.
    return Promise.resolve(routed).then(finish, (err: unknown) => finish(failed(err)));
  };
}

/**
 * The path without its trailing slashes (`/health/` is `/health`; `//` is `/`), in one pass from
 * the end: a regular expression such as `/\/+$/` retries from every slash of a run that does not
 * end the path, quadratic in its length (a 16 KB path cost 200 ms of CPU).
 */
export function withoutTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 1 && path.charCodeAt(end - 1) === 0x2f) end--;
  if (end === path.length) return path === '' ? '/' : path;
  return path.slice(0, end);
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
