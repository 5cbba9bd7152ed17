import type { HttpFunction, Request, Response } from '@google-cloud/functions-framework';
import { z } from 'zod';
import {
  BackendUnavailableError,
  PreconditionFailedError,
  PublishRefusedError,
  SnapshotIntegrityError,
} from '../errors.js';
import type { ScheduledEvent, ScheduledHandler } from '../jobs/scheduled-job.js';
import type { Logger } from '../logger.js';
import { errorBody, JSON_HEADERS } from './responses.js';

const bodySchema = z.union([z.undefined(), z.object({ force: z.boolean().optional() }).strict()]);

/**
 * Wraps a scheduled job handler as a functions-framework HTTP function for Cloud Scheduler's
 * HTTP target (OIDC is checked by the platform, not here). POST only; `{"force": true}` in a JSON
 * body overrides the publication guards. 200 with the summary, or a JSON error whose status
 * tells the scheduler to retry (5xx, 409) or not.
 */
export function toScheduledHttpFunction(
  handler: () => Promise<ScheduledHandler>,
  log: Logger,
): HttpFunction {
  return async (req: Request, res: Response) => {
    if (req.method !== 'POST') {
      return send(res, 405, errorBody('method_not_allowed', 'use POST'), { allow: 'POST' });
    }
    const parsed = bodySchema.safeParse(bodyOf(req));
    if (!parsed.success) {
      return send(
        res,
        400,
        errorBody('invalid_body', 'expected an empty body or {"force": true|false}'),
      );
    }
    const event: ScheduledEvent = {
      trigger: req.get('x-cloudscheduler') === 'true' ? 'cloud-scheduler' : 'manual',
      jobName: req.get('x-cloudscheduler-jobname'),
      scheduleTime: req.get('x-cloudscheduler-scheduletime'),
      force: parsed.data?.force ?? false,
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
  if (err instanceof PublishRefusedError) return [409, 'publish_refused'];
  if (err instanceof PreconditionFailedError) return [409, 'publish_conflict'];
  if (err instanceof BackendUnavailableError) return [503, 'source_unavailable'];
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
