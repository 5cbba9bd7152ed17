import type { HttpFunction, Request, Response } from '@google-cloud/functions-framework';
import type { Logger } from '../logger.js';
import { readRequestBody } from './harden-framework.js';
import type { HandlerContext, HttpEvent, HttpHandler, HttpResult } from './http-event.js';
import { internalErrorResult } from './responses.js';

let requestCount = 0;

/**
 * Wraps an AWS-style handler as a functions-framework HTTP function: builds the event from
 * the Express request, writes the result back, and turns anything the handler throws into a
 * generic 500 (the error is logged, never sent).
 */
export function toHttpFunction(handler: () => HttpHandler, log: Logger): HttpFunction {
  return (req: Request, res: Response) => {
    const fail = (err: unknown) => {
      log.error('unhandled error in handler', { err });
      write(res, internalErrorResult());
    };
    // The handler's own promise, chained once (no async function around it: under the
    // framework's per-request domain every promise costs async-hook calls, bench part n).
    try {
      handler()(toHttpEvent(req), new WireContext(req, res)).then((r) => write(res, r), fail);
    } catch (err) {
      fail(err);
    }
  };
}

function write(res: Response, result: HttpResult): void {
  if (res.headersSent) {
    result.release?.();
    return;
  }
  const headers: Record<string, string | number> = { ...result.headers };
  headers['content-length'] =
    typeof result.body === 'string' ? Buffer.byteLength(result.body) : result.body.length;
  res.writeHead(result.statusCode, headers);
  // Node leaves the body out of answers to HEAD by itself. A pooled body goes back to its pool
  // once it has been handed to the kernel ('finish'); a dropped connection just never returns it.
  if (result.release) res.end(result.body, result.release);
  else res.end(result.body);
}

/** The API Gateway-style event for an Express request. */
export function toHttpEvent(req: Request): HttpEvent {
  const url = req.originalUrl || req.url || '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  // Node's header object has no Object.prototype in its chain (a `__proto__` header is plain
  // data) and joins repeated request headers, set-cookie aside: it can be used as it is.
  const headers = req.headers as Readonly<Record<string, string>>;
  return {
    rawPath,
    rawQueryString: q < 0 ? '' : url.slice(q + 1),
    headers,
    // The body stays on the wire until the handler accepts one (HandlerContext.readBody).
    body: '',
    isBase64Encoded: false,
    requestContext: {
      requestId:
        headers['x-cloud-trace-context']?.split('/')[0] ?? `${process.pid}-${++requestCount}`,
      timeEpoch: Date.now(),
      http: new EventHttp(req, rawPath),
    },
  };
}

/**
 * The event's `requestContext.http`: a class, not an object literal with a getter (which V8
 * builds on a slow path per request). Express derives the source IP from X-Forwarded-For on
 * each read: only when someone asks.
 */
class EventHttp {
  readonly method: string;
  readonly userAgent: string;
  /** Private in the language: the event stays plain data to print or serialise. */
  readonly #req: Request;

  constructor(
    req: Request,
    readonly path: string,
  ) {
    this.#req = req;
    this.method = req.method;
    this.userAgent = req.headers['user-agent'] ?? '';
  }

  get sourceIp(): string {
    return this.#req.ip ?? '';
  }
}

/** The handler's context for a request on the wire (a class: no closure per request). */
class WireContext implements HandlerContext {
  readonly #req: Request;
  readonly #res: Response;

  constructor(req: Request, res: Response) {
    this.#req = req;
    this.#res = res;
  }

  get signal(): AbortSignal | undefined {
    return this.#req.abortController?.signal;
  }

  readBody(timeoutMs: number): Promise<Buffer> {
    return readRequestBody(this.#req, this.#res, timeoutMs);
  }
}
