import type { HttpEvent } from '../../shared/http/http-event.js';

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
