import { randomUUID } from 'node:crypto';
import type { HttpFunction, Request, Response } from '@google-cloud/functions-framework';
import type { Logger } from '../logger.js';
import type { HttpEvent, HttpHandler, HttpResult } from './http-event.js';
import { internalErrorResult } from './responses.js';

/**
 * Wraps an AWS-style handler as a functions-framework HTTP function: builds the event from
 * the Express request, writes the result back, and turns anything the handler throws into a
 * generic 500 (the error is logged, never sent).
 */
export function toHttpFunction(handler: () => HttpHandler, log: Logger): HttpFunction {
  return async (req: Request, res: Response) => {
    let result: HttpResult;
    try {
      result = await handler()(toHttpEvent(req), { signal: req.abortController?.signal });
    } catch (err) {
      log.error('unhandled error in handler', { err });
      result = internalErrorResult();
    }
    if (res.headersSent) return;
    const headers: Record<string, string | number> = { ...result.headers };
    headers['content-length'] = Buffer.byteLength(result.body);
    res.writeHead(result.statusCode, headers);
    // Node leaves the body out of answers to HEAD by itself.
    res.end(result.body);
  };
}

/** The API Gateway-style event for an Express request. */
export function toHttpEvent(req: Request): HttpEvent {
  const url = req.originalUrl || req.url || '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const headers: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const raw = req.rawBody;
  return {
    rawPath,
    rawQueryString: q < 0 ? '' : url.slice(q + 1),
    headers,
    body: raw ? raw.toString('base64') : '',
    isBase64Encoded: raw !== undefined,
    requestContext: {
      requestId: headers['x-cloud-trace-context']?.split('/')[0] ?? randomUUID(),
      timeEpoch: Date.now(),
      http: {
        method: req.method,
        path: rawPath,
        sourceIp: req.ip ?? '',
        userAgent: headers['user-agent'] ?? '',
      },
    },
  };
}
