import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { HttpError } from '../errors.js';
import { createLogger } from '../logger.js';
import { errorBody, JSON_HEADERS } from './responses.js';

/**
 * Largest request body any of our functions takes, after inflation: a batch of 250 ids
 * (BATCH_MAX_IDS' upper bound) of 128 characters with type names fits with room to spare.
 */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Longest URL any of our functions takes (path and query), 414 past it: room for an id of
 * 4,096 characters (the largest MAX_ID_LENGTH) with its type and answer options, unless much of
 * the id must be %-encoded (ids are printable ASCII; those of the id types we know need none).
 */
export const MAX_URL_CHARS = 8 * 1024;

/**
 * How long a client may take to send its request headers, and its whole request: a few times
 * the request budget (REQUEST_BUDGET_MS, 1.5 s by default). Node's defaults (60 s and 300 s)
 * let a slow sender hold a Cloud Run concurrency slot for minutes.
 */
export const HEADERS_TIMEOUT_MS = 5_000;
export const REQUEST_TIMEOUT_MS = 10_000;
/** How often Node checks those two (its default, 30 s, would stretch them that much). */
const CONNECTIONS_CHECK_MS = 1_000;

type Next = (err?: unknown) => void;
type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
type ParserFactory = ((options?: object) => Middleware) & { original?: ParserFactory };
type Handle = (this: unknown, req: IncomingMessage, res: ServerResponse, callback?: Next) => void;
type CreateServer = ((...args: unknown[]) => Server) & { hardened?: boolean };
type BodyParser = Record<'json' | 'raw' | 'text' | 'urlencoded', ParserFactory>;

const require = createRequire(import.meta.url);
const log = createLogger();

/** A parser that leaves the body on the wire: handlers read it when they accept one. */
const leaveBody: ParserFactory = () => (_req, _res, next) => next();

/**
 * functions-framework builds its Express app with four body parsers that read and parse any
 * body (up to 1 GiB inflated, nested url-encoded forms included) on every path and method,
 * before our function runs or checks a key, and an error page in HTML; its server keeps Node's
 * slow-client timeouts. Each piece is replaced before the framework builds its app (it does so
 * after loading our entry module; versions are pinned, and the HTTP tests break if this stops
 * working):
 * - the body parsers leave bodies unread: a handler that takes a body reads it with
 *   readRequestBody, after its own checks, once;
 * - the app's final handler answers JSON `{"error":{"code","message"}}` like our own errors;
 * - the HTTP server bounds header and request time (HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS) and
 *   answers what Node answers by itself (400, 408, 413, 417, 431) in JSON too.
 */
export function hardenFunctionsFramework(): void {
  const bodyParser = require('body-parser') as BodyParser;
  for (const kind of ['json', 'raw', 'text', 'urlencoded'] as const) {
    const original = bodyParser[kind];
    if (original.original) continue;
    const left: ParserFactory = () => leaveBody();
    left.original = original;
    bodyParser[kind] = left;
  }

  const http = require('node:http') as { createServer: CreateServer };
  if (!http.createServer.hardened) {
    const createServer = http.createServer;
    const hardened: CreateServer = (...args: unknown[]) => {
      // Only the framework's own server: an Express app as the one argument.
      const app = args[0] as { handle?: unknown; set?: unknown } | undefined;
      if (args.length !== 1 || typeof app?.handle !== 'function' || typeof app.set !== 'function') {
        return createServer(...args);
      }
      const options: ServerOptions = {
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
      };
      const server = createServer(options, app);
      server.on('clientError', answerClientError);
      server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
        sendError(res, 417, 'expectation_failed', 'only Expect: 100-continue is supported');
      });
      return server;
    };
    hardened.hardened = true;
    http.createServer = hardened;
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
    // Express matches and splits every path through its routes before our function runs: a
    // long path of slashes costs it a millisecond and more. No request of ours needs more.
    if ((req.url ?? '').length > MAX_URL_CHARS) {
      sendError(res, 414, 'uri_too_long', `URLs are limited to ${MAX_URL_CHARS} characters`);
      return;
    }
    handle.call(this, req, res, callback ?? ((err?: unknown) => finalAnswer(res, err)));
  };
  hardenedHandle.hardened = true;
  application.handle = hardenedHandle;
}

let rawParser: Middleware | undefined;

/**
 * Reads a request's body, inflated (gzip, deflate, br) and at most MAX_BODY_BYTES after
 * inflation, within `timeoutMs`; an empty buffer when there is none. Failures are HttpErrors
 * (413 too large, 415 unknown encoding, 408 too slow: the connection then closes, its body
 * unread).
 */
export function readRequestBody(
  req: IncomingMessage,
  res: ServerResponse,
  timeoutMs: number,
): Promise<Buffer> {
  if (!rawParser) {
    const raw = (require('body-parser') as BodyParser).raw;
    rawParser = (raw.original ?? raw)({ type: () => true, limit: MAX_BODY_BYTES });
  }
  const parse = rawParser;
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => {
      res.shouldKeepAlive = false;
      req.unpipe();
      req.pause();
      reject(
        new HttpError(408, 'request_timeout', `send the request body within ${timeoutMs} ms`, {
          headers: { connection: 'close' },
        }),
      );
    }, timeoutMs);
    parse(req, res, (err) => {
      clearTimeout(timer);
      if (err) {
        const [status, code, message] = classify(err);
        reject(new HttpError(status, code, message));
        return;
      }
      const body = (req as { body?: unknown }).body;
      resolve(Buffer.isBuffer(body) ? body : Buffer.alloc(0));
    });
  });
}

/** What Express answers when no function did: a JSON error, never a page or a stack. */
function finalAnswer(res: ServerResponse, err: unknown): void {
  const [status, code, message] = classify(err);
  if (status >= 500) log.error('request failed before reaching the function', { err });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendError(res, status, code, message);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = errorBody(code, message);
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Node's own answers to a request it cannot hand to the app, as JSON (then the socket closes). */
const CLIENT_ERRORS: Readonly<Record<string, readonly [number, string, string]>> = {
  ERR_HTTP_REQUEST_TIMEOUT: [
    408,
    'request_timeout',
    `send the whole request within ${REQUEST_TIMEOUT_MS} ms`,
  ],
  ERR_HTTP_HEADERS_TIMEOUT: [
    408,
    'request_timeout',
    `send the request headers within ${HEADERS_TIMEOUT_MS} ms`,
  ],
  HPE_HEADER_OVERFLOW: [431, 'headers_too_large', 'the request headers are too large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'request_too_large', 'chunk extensions too large'],
};

function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  // A response already on its way cannot be followed by another (Node's own rule).
  const answering = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || answering?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? [
    400,
    'bad_request',
    'the request could not be parsed as HTTP',
  ];
  const body = errorBody(code, message);
  const head =
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
    Object.entries(JSON_HEADERS)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('') +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
  socket.end(head + body);
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
};

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
