/**
 * An HTTP request as an AWS-style handler sees it: the subset of API Gateway's HTTP API
 * (payload format 2.0) event that our handlers use. Header names are lower-case.
 */
export interface HttpEvent {
  readonly rawPath: string;
  readonly rawQueryString: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly isBase64Encoded: boolean;
  readonly requestContext: {
    readonly requestId: string;
    readonly timeEpoch: number;
    readonly http: {
      readonly method: string;
      readonly path: string;
      readonly sourceIp: string;
      readonly userAgent: string;
    };
  };
}

/**
 * What a handler returns, as API Gateway expects it; a body may also be bytes already encoded
 * (large JSON answers), which the adapter writes as they are.
 */
export interface HttpResult {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Buffer;
  /** Called once the body has been sent, when it lives in a pooled buffer (see ByteWriter). */
  readonly release?: () => void;
}

/** Per-invocation extras, like Lambda's context object. */
export interface HandlerContext {
  /** Aborted when the platform times the request out or the client goes away. */
  readonly signal?: AbortSignal;
  /**
   * Reads a body still on the wire (the functions-framework adapter leaves it there until a
   * handler accepts one; see readRequestBody), within `timeoutMs`. Absent when the event carries
   * its body (tests, API Gateway).
   */
  readonly readBody?: (timeoutMs: number) => Promise<Buffer>;
}

/** The request's body, from the wire when it is still there, else the event's own. */
export function requestBody(
  event: HttpEvent,
  context: HandlerContext,
  timeoutMs: number,
): Promise<Buffer> {
  if (context.readBody) return context.readBody(timeoutMs);
  return Promise.resolve(Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8'));
}

/** An AWS-style HTTP handler: a plain async function from event to result. */
export type HttpHandler = (event: HttpEvent, context: HandlerContext) => Promise<HttpResult>;
