import type { HttpFunction, Request, Response } from '@google-cloud/functions-framework';
import { z } from 'zod';
import type { HttpError } from '../errors.js';
import { classifyJobError } from '../jobs/job-errors.js';
import type { ScheduledEvent, ScheduledHandler } from '../jobs/scheduled-job.js';
import type { Logger } from '../logger.js';
import { readRequestBody } from './harden-framework.js';
import { errorBody, JSON_HEADERS } from './responses.js';

/** What a job function accepts in its POST body, beyond the scheduler's empty `{}`. */
export interface ScheduledBodyOptions {
  /** Whether `{"dryRun": true}` is supported (the mapping job checks its query). */
  readonly dryRun?: boolean;
  /** Whether `{"resync": true}` and `{"force": true}` are supported (syncMapping). */
  readonly sync?: boolean;
  /** Whether `force` and `rollbackTo` are (snapshot jobs). */
  readonly snapshots?: boolean;
}

/** A job's body is a few bytes: a caller that cannot send them in this time is answered 408. */
const BODY_TIMEOUT_MS = 10_000;

const VERSION = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

/**
 * Wraps a scheduled job handler as a functions-framework HTTP function for Cloud Scheduler's
 * HTTP target (OIDC is checked by the platform, not here). POST only, with an empty body or
 * `{"force": true}` (override the shrink guard), `{"rollbackTo": "<version>"}` (republish an
 * earlier version) or, where supported, `{"dryRun": true}`.
 *
 * Cloud Scheduler retries EVERY non-2xx answer. So 2xx means "do not retry": a run that
 * published, found nothing new, or was refused (empty, shrunk, too large for memory, a query
 * the source rejects) or lost a race answers 200 with its summary, the outcome saying which.
 * 5xx is kept for failures a retry can fix (source or store unavailable 503, timeout 504), for
 * bugs (500 `internal`) and for an environment that fails validation (500 `misconfigured`,
 * logged at ERROR naming the variable): the function cannot run as deployed, so the attempt
 * fails where the scheduler's job status and the function's error rate show it. Its retries
 * are bounded by the job's retry count (deploy.sh: 3) and cost nothing (the environment is
 * checked before any backend is called). 4xx is for manual calls: a bad body (400), a failed
 * dry run (400), a request the job does not support (400), an unknown rollback version (404).
 */
export function toScheduledHttpFunction<S>(
  handler: () => Promise<ScheduledHandler<S>>,
  log: Logger,
  options: ScheduledBodyOptions = { snapshots: true },
): HttpFunction {
  const bodySchema = z.union([
    z.undefined(),
    z
      .object({
        ...(options.snapshots
          ? {
              force: z.boolean().optional(),
              rollbackTo: z.string().regex(VERSION, 'a snapshot version').optional(),
            }
          : {}),
        ...(options.dryRun ? { dryRun: z.boolean().optional() } : {}),
        ...(options.sync ? { force: z.boolean().optional(), resync: z.boolean().optional() } : {}),
      })
      .strict()
      .refine(
        (b: Record<string, unknown>) =>
          [b.force || b.resync, b.rollbackTo, b.dryRun].filter(Boolean).length <= 1,
        'give at most one of force (or resync, or both), rollbackTo and dryRun',
      ),
  ]);
  const accepted = [
    'an empty body',
    ...(options.snapshots ? ['{"force": true}', '{"rollbackTo": "<version>"}'] : []),
    ...(options.dryRun ? ['{"dryRun": true}'] : []),
    ...(options.sync ? ['{"resync": true}', '{"force": true}', 'both'] : []),
  ].join(', ');
  return async (req: Request, res: Response) => {
    if (req.method !== 'POST') {
      return send(res, 405, errorBody('method_not_allowed', 'use POST'), { allow: 'POST' });
    }
    let raw: Buffer;
    try {
      raw = await readRequestBody(req, res, BODY_TIMEOUT_MS);
    } catch (err) {
      const { statusCode, code, message } = err as HttpError;
      return send(res, statusCode, errorBody(code, message));
    }
    const parsed = bodySchema.safeParse(bodyOf(raw));
    if (!parsed.success) {
      return send(res, 400, errorBody('invalid_body', `expected ${accepted}`));
    }
    const body = (parsed.data ?? {}) as {
      force?: boolean;
      rollbackTo?: string;
      dryRun?: boolean;
      resync?: boolean;
    };
    const event: ScheduledEvent = {
      trigger: req.get('x-cloudscheduler') === 'true' ? 'cloud-scheduler' : 'manual',
      jobName: req.get('x-cloudscheduler-jobname'),
      scheduleTime: req.get('x-cloudscheduler-scheduletime'),
      force: body.force ?? false,
      dryRun: body.dryRun ?? false,
      rollbackTo: body.rollbackTo,
      resync: body.resync ?? false,
    };
    try {
      const run = await handler();
      const summary = await run(event, { signal: req.abortController?.signal });
      return send(res, 200, JSON.stringify(summary));
    } catch (err) {
      const { status, code } = classifyJobError(err);
      if (code === 'internal') log.error('scheduled job crashed', { err });
      if (code === 'misconfigured') {
        log.error(`scheduled job misconfigured: ${(err as Error).message}`, { err });
      }
      // Our own errors say what went wrong in terms an operator can act on; others stay generic.
      const message = code === 'internal' ? 'internal error' : (err as Error).message;
      return send(res, status, errorBody(code, message));
    }
  };
}

/** The body as JSON (whatever its declared type: schedulers often send octet-stream); undefined when empty. */
function bodyOf(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    const body: unknown = JSON.parse(raw.toString('utf8'));
    // The scheduler's default body is {}.
    if (typeof body === 'object' && body !== null && Object.keys(body).length === 0)
      return undefined;
    return body;
  } catch {
    return 'not json';
  }
}

function send(res: Response, status: number, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { ...JSON_HEADERS, ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
