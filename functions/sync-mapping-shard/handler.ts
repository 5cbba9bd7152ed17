import { randomBytes } from 'node:crypto';
import type { Table } from '@google-cloud/bigtable';
import { z } from 'zod';
import { BackendUnavailableError, describeError, HttpError } from '../../shared/errors.js';
import {
  type HandlerContext,
  type HttpEvent,
  type HttpResult,
  requestBody,
} from '../../shared/http/http-event.js';
import { errorBody, jsonResult } from '../../shared/http/responses.js';
import type { IdTypeRegistry } from '../../shared/id-types.js';
import type { Logger } from '../../shared/logger.js';
import type { ResultPages } from '../../shared/mapping/bigquery-version-source.js';
import { parseShardMessage, type ShardMessage } from '../../shared/mapping/shard-queue.js';
import { readPlan, recordFailure } from '../../shared/mapping/sync-plan.js';
import { DEFAULT_SYNC_LIMITS, runShard, type SyncLimits } from '../../shared/mapping/sync-shard.js';
import type { SyncShardConfig } from './config.js';

/** What the shard worker needs, injected so tests can pass their own. */
export interface ShardWorkerDeps {
  readonly config: Pick<SyncShardConfig, 'SYNC_SHARD_TIMEOUT_MS'>;
  readonly registry: IdTypeRegistry;
  readonly source: ResultPages;
  /** The mapping table, opened on first use. */
  readonly table: () => Promise<Table>;
  readonly limits?: SyncLimits;
  readonly log: Logger;
  readonly now: () => number;
}

/** A Pub/Sub push request (wrapped), as much of it as the worker reads. */
const pushSchema = z.object({
  message: z.object({
    data: z.string().max(4_096).optional(),
    messageId: z.string().max(200).optional(),
  }),
  subscription: z.string().max(500).optional(),
  /** Present when the subscription has a dead-letter policy. */
  deliveryAttempt: z.number().int().min(1).optional(),
});

/** A push body is a few hundred bytes: a caller that cannot send it in this time gets 408. */
const BODY_TIMEOUT_MS = 10_000;
/** After the clean stop, how long the pages being written may take to land. */
const GRACE_MS = 30_000;

/**
 * `syncMappingShard`: writes one shard of a mapping version, pushed by Pub/Sub (POST, the wrapped
 * push format). The status is Pub/Sub's acknowledgement: 2xx when there is nothing more to do
 * (written, written already by another attempt, or its plan is no longer current; a message that
 * is not a shard is acknowledged and logged, never retried), 503 when a later delivery should try
 * again (another worker holds the shard, the shard stopped cleanly at SYNC_SHARD_TIMEOUT_MS with
 * its progress saved, BigQuery or Bigtable failed: the failure is recorded on the shard). Pub/Sub
 * redelivers with the subscription's back-off and, past its maximum delivery attempts, sends the
 * message to the dead-letter topic, which syncMapping drains.
 */
export function createShardWorkerHandler(deps: ShardWorkerDeps) {
  const limits = deps.limits ?? DEFAULT_SYNC_LIMITS;
  return async (event: HttpEvent, context: HandlerContext): Promise<HttpResult> => {
    if (event.requestContext.http.method !== 'POST') {
      return jsonResult(405, errorBody('method_not_allowed', 'use POST'), { allow: 'POST' });
    }
    let message: ShardMessage | undefined;
    let deliveryAttempt: number | undefined;
    try {
      const raw = await requestBody(event, context, BODY_TIMEOUT_MS);
      const push = pushSchema.safeParse(JSON.parse(raw.toString('utf8') || 'null'));
      if (push.success) {
        message = parseShardMessage(Buffer.from(push.data.message.data ?? '', 'base64'));
        deliveryAttempt = push.data.deliveryAttempt;
      }
    } catch (err) {
      if (err instanceof HttpError) {
        return jsonResult(err.statusCode, errorBody(err.code, err.message), err.headers);
      }
      // Not JSON: handled as any other message that is not a shard.
    }
    if (!message) {
      // Never a shard: retrying cannot change that, so it is acknowledged, and said.
      deps.log.error('syncMappingShard: acknowledged a message that is not a shard');
      return jsonResult(200, JSON.stringify({ outcome: 'not_a_shard' }));
    }
    const shard = message;
    const log = deps.log.child({
      planId: shard.planId,
      partition: shard.partition,
      shard: shard.shard,
    });
    const stop = AbortSignal.any([
      AbortSignal.timeout(deps.config.SYNC_SHARD_TIMEOUT_MS),
      ...(context.signal ? [context.signal] : []),
    ]);
    const signal = AbortSignal.any([
      AbortSignal.timeout(deps.config.SYNC_SHARD_TIMEOUT_MS + GRACE_MS),
      ...(context.signal ? [context.signal] : []),
    ]);
    let table: Table | undefined;
    try {
      table = await deps.table();
      const result = await runShard({
        table,
        source: deps.source,
        registry: deps.registry,
        limits,
        planId: shard.planId,
        shard: shard.shard,
        workerId: randomBytes(8).toString('hex'),
        stop,
        signal,
        now: deps.now,
      });
      switch (result.outcome) {
        case 'done':
          log.info(
            `syncMappingShard: shard ${shard.shard} of ${shard.partition} written: ` +
              `${result.stats.ids} ids in ${result.stats.durationMs} ms` +
              (result.completed ? `; version ${shard.partition} is now current` : ''),
            { stats: result.stats, ...(result.completed ? { version: result.completed } : {}) },
          );
          return jsonResult(200, JSON.stringify({ outcome: 'done', stats: result.stats }));
        case 'already_done':
        case 'stale':
          log.info(
            `syncMappingShard: shard ${shard.shard} of ${shard.partition}: ${result.outcome}`,
          );
          return jsonResult(200, JSON.stringify({ outcome: result.outcome }));
        case 'busy':
          log.info(`syncMappingShard: shard ${shard.shard} is held by another worker; later`);
          return retryLater('busy', 'another worker holds this shard');
        case 'stopped':
          log.info(
            `syncMappingShard: shard ${shard.shard} stopped at row ${result.offset} ` +
              '(SYNC_SHARD_TIMEOUT_MS); the next delivery continues from there',
          );
          return retryLater('stopped', `stopped at row ${result.offset}; continues on redelivery`);
      }
    } catch (err) {
      const reason = describeError(err);
      if (table && !signal.aborted) {
        const state = await readPlan(table, AbortSignal.timeout(10_000)).catch(() => undefined);
        const before = state?.shards.get(shard.shard)?.failure?.attempts ?? 0;
        const failure = {
          attempts: deliveryAttempt ?? before + 1,
          error: reason,
          at: new Date(deps.now()).toISOString(),
        };
        await recordFailure(
          table,
          shard.planId,
          shard.shard,
          failure,
          AbortSignal.timeout(10_000),
        ).catch(() => undefined);
      }
      if (err instanceof BackendUnavailableError || stop.aborted) {
        log.warn(`syncMappingShard: shard ${shard.shard} failed: ${reason}`, { err });
        return retryLater('unavailable', reason);
      }
      log.error(`syncMappingShard: shard ${shard.shard} crashed`, { err });
      return jsonResult(500, errorBody('internal', 'internal error'));
    }
  };
}

/** A negative acknowledgement: Pub/Sub delivers the message again after its back-off. */
function retryLater(code: string, message: string): HttpResult {
  return jsonResult(503, errorBody(code, message));
}
