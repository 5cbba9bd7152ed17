import type { HttpEvent } from '../../shared/http/http-event.js';
import { type Logger, traceFields } from '../../shared/logger.js';
import { eventLoopDelay } from '../../shared/profiles/event-loop-delay.js';
import type { LogRequests } from './config.js';
import type { Phases } from './server-timing.js';

/** Longest path, query or User-Agent a log line carries (the rest is cut, its length noted). */
const MAX_FIELD_CHARS = 256;
/** Rejected requests (4xx) logged per second at most, and in a burst. */
const REJECTED_PER_SEC = 10;
const REJECTED_BURST = 20;

/** What the request log needs to know of a request once it is answered. */
export interface AnsweredRequest {
  readonly event: HttpEvent;
  /** The route it took (`/`, `/health`...), or `other`: the message never carries a raw path. */
  readonly route: string;
  readonly status: number;
  /** Our error code (`unknown_id`...) when the answer is an error. */
  readonly errorCode: string | undefined;
  readonly phases: Phases;
}

/** Settings of the request log (see the profile function's config). */
export interface RequestLogSettings {
  readonly LOG_REQUESTS: LogRequests;
  readonly LOG_SLOW_MS: number;
  readonly LOG_USER_IDS: boolean;
  readonly GOOGLE_CLOUD_PROJECT?: string | undefined;
}

/**
 * The profile function's own request log. Cloud Run writes a request log entry for every
 * request anyway (status, latency, URL: exact counts live there), so the function's line (which
 * adds the phases and the trace) is for what needs looking at: 5xx, client errors other than an
 * unknown id (a normal answer for a lookup API), and requests slower than LOG_SLOW_MS are always
 * logged; the rest only with `all`, or a random share with `sample:<rate>`.
 *
 * What a caller controls cannot multiply the log's volume (Cloud Logging bills by the byte):
 * every field a caller writes is cut to MAX_FIELD_CHARS, and client errors are logged at most
 * REJECTED_PER_SEC a second (token bucket); the next line logged says how many were left out
 * since (`rejectedNotLogged`), so the function's own counts stay exact.
 */
export class RequestLog {
  private tokens = REJECTED_BURST;
  private refilledAt: number;
  private notLogged = 0;

  constructor(
    private readonly settings: RequestLogSettings,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.refilledAt = clock();
  }

  /** Logs the request if the policy says so. */
  answered(request: AnsweredRequest): void {
    const { status } = request;
    if (!this.wanted(status, request.phases.total ?? 0, request.errorCode)) return;
    if (status >= 400 && status < 500 && !this.takeToken()) {
      this.notLogged++;
      return;
    }
    this.write(request);
  }

  private wanted(status: number, totalMs: number, errorCode: string | undefined): boolean {
    const setting = this.settings.LOG_REQUESTS;
    if (setting.mode === 'all') return true;
    if (status >= 500 || totalMs >= this.settings.LOG_SLOW_MS) return true;
    if (status >= 400 && errorCode !== 'unknown_id') return true;
    return setting.mode === 'sample' && this.random() < setting.rate;
  }

  private takeToken(): boolean {
    const now = this.clock();
    this.tokens = Math.min(
      REJECTED_BURST,
      this.tokens + ((now - this.refilledAt) / 1000) * REJECTED_PER_SEC,
    );
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private write({ event, route, status, errorCode, phases }: AnsweredRequest): void {
    const method = bounded(event.requestContext.http.method);
    const url =
      this.settings.LOG_USER_IDS && event.rawQueryString
        ? `${bounded(event.rawPath)}?${bounded(event.rawQueryString)}`
        : bounded(event.rawPath);
    const fields: Record<string, unknown> = {
      ...traceFields(event.headers, this.settings.GOOGLE_CLOUD_PROJECT),
      httpRequest: {
        requestMethod: method,
        requestUrl: url,
        status,
        latency: `${((phases.total ?? 0) / 1000).toFixed(6)}s`,
        userAgent: bounded(event.requestContext.http.userAgent),
      },
      phases: roundPhases(phases),
      // How late the event loop runs: what turns healthy Aerospike reads into timeouts.
      eventLoopDelay: eventLoopDelay(),
    };
    // Log-based metrics count answers by this code (deploy.sh: store_unavailable, ...).
    if (errorCode !== undefined) fields.errorCode = errorCode;
    if (this.notLogged > 0) {
      fields.rejectedNotLogged = this.notLogged;
      this.notLogged = 0;
    }
    const message = `${method} ${route} ${status}`;
    if (status >= 500) this.log.error(message, fields);
    else if (status >= 400 && status !== 404) this.log.warn(message, fields);
    else this.log.info(message, fields);
  }
}

/** A caller's text cut to MAX_FIELD_CHARS, saying how much was left out. */
function bounded(text: string): string {
  if (text.length <= MAX_FIELD_CHARS) return text;
  return `${text.slice(0, MAX_FIELD_CHARS)}...(${text.length} chars)`;
}

function roundPhases(phases: Phases): Phases {
  const rounded: Phases = {};
  for (const name in phases) rounded[name] = Math.round((phases[name] as number) * 100) / 100;
  return rounded;
}
