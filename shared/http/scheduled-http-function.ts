import type { HttpFunction, Request, Response } from '@google-cloud/functions-framework';
import { z } from 'zod';
import {
  BackendUnavailableError,
  ConfigError,
  InvalidQueryError,
  JobTimeoutError,
  PreconditionFailedError,
  SnapshotIntegrityError,
  UnknownVersionError,
} from '../errors.js';
import type { ScheduledEvent, ScheduledHandler } from '../jobs/scheduled-job.js';
import type { Logger } from '../logger.js';
import { errorBody, JSON_HEADERS } from './responses.js';

/** What a job function accepts in its POST body, beyond the scheduler's empty `{}`. */
export interface ScheduledBodyOptions {
  /** Whether `{"dryRun": true}` is supported (the mapping job checks its query). */
  readonly dryRun: boolean;
}

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
 * 5xx is kept for failures a retry can fix (source or store unavailable 503, timeout 504) and
 * for bugs (500). 4xx is for manual calls: a bad body (400), a failed dry run (400), an unknown
 * rollback version (404).
 */
export function toScheduledHttpFunction(
  handler: () => Promise<ScheduledHandler>,
  log: Logger,
  options: ScheduledBodyOptions = { dryRun: false },
): HttpFunction {
  const bodySchema = z.union([
    z.undefined(),
    z
      .object({
        force: z.boolean().optional(),
        rollbackTo: z.string().regex(VERSION, 'a snapshot version').optional(),
        ...(options.dryRun ? { dryRun: z.boolean().optional() } : {}),
      })
      .strict()
      .refine(
        (b) => [b.force, b.rollbackTo, 'dryRun' in b && b.dryRun].filter(Boolean).length <= 1,
        'give at most one of force, rollbackTo and dryRun',
      ),
  ]);
  const accepted = `an empty body, {"force": true}, {"rollbackTo": "<version>"}${options.dryRun ? ' or {"dryRun": true}' : ''}`;
  return async (req: Request, res: Response) => {
    if (req.method !== 'POST') {
      return send(res, 405, errorBody('method_not_allowed', 'use POST'), { allow: 'POST' });
    }
    const parsed = bodySchema.safeParse(bodyOf(req));
    if (!parsed.success) {
      return send(res, 400, errorBody('invalid_body', `expected ${accepted}`));
    }
    const body = (parsed.data ?? {}) as { force?: boolean; rollbackTo?: string; dryRun?: boolean };
    const event: ScheduledEvent = {
      trigger: req.get('x-cloudscheduler') === 'true' ? 'cloud-scheduler' : 'manual',
      jobName: req.get('x-cloudscheduler-jobname'),
      scheduleTime: req.get('x-cloudscheduler-scheduletime'),
      force: body.force ?? false,
      dryRun: body.dryRun ?? false,
      rollbackTo: body.rollbackTo,
    };
    try {
      const run = await handler();
      const summary = await run(event, { signal: req.abortController?.signal });
      return send(res, 200, JSON.stringify(summary));
    } catch (err) {
      const [status, code] = classify(err);
      if (status === 500 && code === 'internal') log.error('scheduled job crashed', { err });
      // Our own errors say what went wrong in terms an operator can act on; others stay generic.
      const message = code === 'internal' ? 'internal error' : (err as Error).message;
      return send(res, status, errorBody(code, message));
    }
  };
}

function classify(err: unknown): [number, string] {
  if (err instanceof InvalidQueryError) return [400, 'invalid_query'];
  if (err instanceof UnknownVersionError) return [404, 'unknown_version'];
  if (err instanceof ConfigError) return [400, 'not_supported'];
  if (err instanceof BackendUnavailableError) return [503, 'source_unavailable'];
  if (err instanceof JobTimeoutError) return [504, 'timeout'];
  if (err instanceof PreconditionFailedError) return [503, 'publish_conflict'];
  if (err instanceof SnapshotIntegrityError) return [500, 'snapshot_error'];
  if (err instanceof Error && err.name === 'TimeoutError') return [504, 'timeout'];
  return [500, 'internal'];
}

function bodyOf(req: Request): unknown {
  const body: unknown = req.body;
  // functions-framework leaves an empty Buffer or {} when there is no body.
  if (body === undefined || body === null || body === '') return undefined;
  if (Buffer.isBuffer(body)) return body.length === 0 ? undefined : 'not json';
  if (typeof body === 'object' && Object.keys(body).length === 0) return undefined;
  return body;
}

function send(res: Response, status: number, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { ...JSON_HEADERS, ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
