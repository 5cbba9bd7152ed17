import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { createLogger } from '../logger.js';
import { errorBody, JSON_HEADERS } from './responses.js';

/**
 * Largest request body any of our functions takes, after inflation: a batch of 250 ids
 * (BATCH_MAX_IDS' upper bound) of 128 characters with type names fits with room to spare.
 */
export const MAX_BODY_BYTES = 64 * 1024;

type Next = (err?: unknown) => void;
type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
type ParserFactory = ((options?: object) => Middleware) & { hardened?: boolean };
type Handle = (this: unknown, req: IncomingMessage, res: ServerResponse, callback?: Next) => void;

const require = createRequire(import.meta.url);
const log = createLogger();

/**
 * functions-framework builds its Express app with body parsers limited to 1 GiB (inflated), and
 * anything that fails before our function runs (a body it cannot parse, a path it cannot
 * decode) ends in Express's default error page: HTML, with a stack trace unless
 * NODE_ENV=production. Both pieces are replaced before the framework builds its app (it does so
 * after loading our entry module; versions are pinned, and the HTTP fuzz tests break if this
 * stops working):
 * - each body parser gets our limit;
 * - the app's final handler answers JSON `{"error":{"code","message"}}` like our own errors.
 */
export function hardenFunctionsFramework(): void {
  const bodyParser = require('body-parser') as Record<
    'json' | 'raw' | 'text' | 'urlencoded',
    ParserFactory
  >;
  for (const kind of ['json', 'raw', 'text', 'urlencoded'] as const) {
    const original = bodyParser[kind];
    if (original.hardened) continue;
    const limited: ParserFactory = (options = {}) =>
      original({ ...options, limit: MAX_BODY_BYTES });
    limited.hardened = true;
    bodyParser[kind] = limited;
  }

  const application = (
    require('express') as { application: { handle: Handle & { hardened?: boolean } } }
  ).application;
  if (application.handle.hardened) return;
  const handle = application.handle;
  const hardenedHandle: Handle & { hardened?: boolean } = function (
    this: unknown,
    req,
    res,
    callback,
  ) {
    handle.call(this, req, res, callback ?? ((err?: unknown) => finalAnswer(res, err)));
  };
  hardenedHandle.hardened = true;
  application.handle = hardenedHandle;
}

/** What Express answers when no function did: a JSON error, never a page or a stack. */
function finalAnswer(res: ServerResponse, err: unknown): void {
  const [status, code, message] = classify(err);
  if (status >= 500) log.error('request failed before reaching the function', { err });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(code, message);
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function classify(err: unknown): [number, string, string] {
  if (err === undefined || err === null) return [404, 'not_found', 'no such path'];
  const { status, type } = err as { status?: unknown; type?: unknown };
  if (type === 'entity.parse.failed') {
    return [400, 'invalid_json', 'the body is not valid JSON'];
  }
  if (type === 'entity.too.large') {
    return [413, 'request_too_large', `request bodies are limited to ${MAX_BODY_BYTES} bytes`];
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return [415, 'unsupported_media_type', 'unsupported content encoding or charset'];
  }
  if (err instanceof URIError) return [400, 'invalid_path', 'the path has a malformed %-encoding'];
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return [status, 'invalid_request', 'the request could not be read'];
  }
  return [500, 'internal', 'internal error'];
}
