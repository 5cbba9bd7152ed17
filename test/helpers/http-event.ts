import type { HttpEvent, HttpResult } from '../../shared/http/http-event.js';

/** An API Gateway-style event for handler tests. */
export function httpEvent(
  pathAndQuery: string,
  method = 'GET',
  headers: Record<string, string> = {},
): HttpEvent {
  const q = pathAndQuery.indexOf('?');
  const rawPath = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  return {
    rawPath,
    rawQueryString: q < 0 ? '' : pathAndQuery.slice(q + 1),
    headers,
    body: '',
    isBase64Encoded: false,
    requestContext: {
      requestId: 'test',
      timeEpoch: Date.now(),
      http: { method, path: rawPath, sourceIp: '127.0.0.1', userAgent: 'test' },
    },
  };
}

/** A handler result's body as text, whether the handler answered a string or a Buffer. */
export function resultText(result: HttpResult): string {
  return typeof result.body === 'string' ? result.body : result.body.toString('utf8');
}

/** A handler result's body parsed as a JSON object. */
export function resultJson(result: HttpResult): Record<string, unknown> {
  return JSON.parse(resultText(result)) as Record<string, unknown>;
}
