import type { PooledBytes } from '../byte-writer.js';
import type { HttpError } from '../errors.js';
import type { HttpResult } from './http-event.js';

/** Headers every JSON answer carries. */
export const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
});

/** A JSON answer with an already serialised body (bytes from a pool carry their release). */
export function jsonResult(
  statusCode: number,
  body: string | Buffer | PooledBytes,
  headers: Readonly<Record<string, string>> = {},
): HttpResult {
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body };
  }
  return {
    statusCode,
    headers: { ...JSON_HEADERS, ...headers },
    body: body.bytes,
    release: body.release,
  };
}

/** The error body every failure uses: `{"error":{"code","message"}}`. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** Our own HTTP error as a response; its message was written for callers. */
export function httpErrorResult(err: HttpError): HttpResult {
  return jsonResult(err.statusCode, errorBody(err.code, err.message), err.headers);
}

/** The answer to anything unexpected: no detail leaves the process. */
export function internalErrorResult(): HttpResult {
  return jsonResult(500, errorBody('internal', 'internal error'));
}
