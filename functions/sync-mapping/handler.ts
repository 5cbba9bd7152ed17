import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Table } from '@google-cloud/bigtable';
import { describeError, InvalidQueryError } from '../../shared/errors.js';
import type { IdTypeRegistry } from '../../shared/id-types.js';
import { jobDeadline } from '../../shared/jobs/job-deadline.js';
import type { ScheduledEvent, ScheduledHandler } from '../../shared/jobs/scheduled-job.js';
import type { Logger } from '../../shared/logger.js';
import type { VersionSource } from '../../shared/mapping/bigquery-version-source.js';
import {
  DAY_MS,
  type FirstSyncNote,
  nextVersionTime,
  partitionTime,
  SETTLE_MS,
  shiftDays,
  type VersionRecord,
} from '../../shared/mapping/bigtable-layout.js';
import { readSyncState } from '../../shared/mapping/bigtable-mapping-store.js';
import type { ShardQueue } from '../../shared/mapping/shard-queue.js';
import {
  deletePlan,
  markSent,
  newPlanId,
  type PlanState,
  pendingShards,
  readPlan,
  recordFailure,
  type SyncPlan,
  writeFirstSyncNote,
  writePlan,
} from '../../shared/mapping/sync-plan.js';
import {
  completeIfLanded,
  DEFAULT_SYNC_LIMITS,
  runShard,
  type SyncLimits,
} from '../../shared/mapping/sync-shard.js';
import type { SyncJobConfig } from './config.js';

/** What the sync job needs, injected so tests can pass their own. */
export interface SyncJobDeps {
  readonly config: Pick<
    SyncJobConfig,
    | 'JOB_TIMEOUT_MS'
    | 'MAPPING_WINDOW_DAYS'
    | 'MAPPING_LOOKBACK_DAYS'
    | 'MIN_ROWS_RATIO'
    | 'SYNC_SHARD_PERSONS'
    | 'SYNC_INLINE_WORKERS'
  >;
  readonly registry: IdTypeRegistry;
  readonly source: VersionSource;
  /** The mapping table, opened on first use. */
  readonly table: () => Promise<Table>;
  /** Where shards go to the workers; undefined: this function writes them itself. */
  readonly queue?: ShardQueue | undefined;
  readonly limits?: SyncLimits;
  readonly log: Logger;
  readonly now: () => number;
  /** How long after a version became current the next one may start (SETTLE_MS; tests shorten it). */
  readonly settleMs?: number;
}

/** A shard whose last attempt failed, as a run reports it. */
export interface FailedShard {
  readonly shard: number;
  readonly attempts: number;
  readonly error: string;
  readonly deadLettered: boolean;
}

/** The answer of a sync run (also its log line). */
export interface SyncSummary {
  readonly job: 'syncMapping';
  /**
   * `synced`: a version landed (readers use it now); `dispatched`: its shards went to the queue
   * (the worker landing the last one makes it current); `in_progress`: the run stopped at its
   * deadline with shards left, the next run continues; `waiting`: a new version may start only
   * SETTLE_MS after the last one became current; `unchanged`: nothing newer; `refused`: the query
   * is wrong, the new version shrank past MIN_ROWS_RATIO, or a first run found no partition
   * within MAPPING_LOOKBACK_DAYS (`firstSync` says what it found); `failed`: a backend failed or
   * the run timed out (only in the log line: the run answers the error, and the table keeps
   * every landed shard for the next run).
   */
  readonly outcome:
    | 'synced'
    | 'dispatched'
    | 'in_progress'
    | 'waiting'
    | 'unchanged'
    | 'refused'
    | 'failed';
  readonly reason?: string;
  /** A first run that found nothing to write: the newest partition, the setting that left it out. */
  readonly firstSync?: FirstSyncNote;
  /** The partition of the version readers use, before and after this run. */
  readonly version: string | null;
  readonly previousVersion: string | null;
  /** The version being written, where this run left it. */
  readonly plan?: {
    readonly partition: string;
    readonly rows: number;
    readonly shards: number;
    readonly done: number;
    /** Shards this run published to the queue (first time, or again after a dead letter). */
    readonly sent?: number;
    /** Shards whose last attempt failed (at most 20). */
    readonly failedShards: readonly FailedShard[];
  };
  /** What this run wrote itself (no queue). */
  readonly persons: number;
  readonly ids: number;
  readonly idsPerSecond: number;
  readonly durationMs: number;
}

/**
 * How long a plan's query results are read: BigQuery keeps a query's results about a day, so an
 * older plan is planned again (same version, same cells) rather than read until they vanish.
 */
export const PLAN_MAX_AGE_MS = 20 * 3_600_000;
/** How many dead letters a run drains at most (the rest wait for the next run). */
const MAX_DEAD_LETTERS = 1_000;
const LISTED_FAILURES = 20;

/**
 * `syncMapping`: keeps the Bigtable mapping at the latest version of the window, as snapshot mode
 * would load it. A version is written in shards (sync-shard.ts) that land in any order, on any
 * number of workers and runs; it becomes the one readers use only once every shard has landed.
 * With a queue, this run plans the version and publishes its shards (Pub/Sub pushes them to the
 * shard workers, which retry with back-off and dead-letter what keeps failing; each run drains
 * the dead letters, records them and sends them again); without one, it writes them itself until
 * its deadline, and the next run continues. BigQuery or Bigtable failing leaves every landed
 * shard in place (503: the scheduler retries).
 */
export function createSyncMappingHandler(deps: SyncJobDeps): ScheduledHandler<SyncSummary> {
  const { config } = deps;
  const limits = deps.limits ?? DEFAULT_SYNC_LIMITS;
  const settleMs = deps.settleMs ?? SETTLE_MS;
  return async (event, context) => {
    const started = deps.now();
    const deadline = jobDeadline(config.JOB_TIMEOUT_MS, context.signal);
    const { signal } = deadline;
    // A clean stop before the hard one: no shard or page starts after it, the pages being
    // written land and their progress is saved.
    const grace = Math.min(60_000, Math.floor(config.JOB_TIMEOUT_MS / 4));
    const stop = AbortSignal.any([signal, AbortSignal.timeout(config.JOB_TIMEOUT_MS - grace)]);
    let previous: VersionRecord | undefined;
    let current: VersionRecord | undefined;
    let planView: SyncSummary['plan'];
    let persons = 0;
    let ids = 0;
    const summary = (
      outcome: SyncSummary['outcome'],
      reason?: string,
      firstSync?: FirstSyncNote,
    ): SyncSummary => {
      const durationMs = Math.round(deps.now() - started);
      return {
        job: 'syncMapping',
        outcome,
        ...(reason ? { reason } : {}),
        ...(firstSync ? { firstSync } : {}),
        version: current?.partition ?? null,
        previousVersion: previous?.partition ?? null,
        ...(planView ? { plan: planView } : {}),
        persons,
        ids,
        idsPerSecond: durationMs > 0 ? Math.round((ids * 1000) / durationMs) : ids,
        durationMs,
      };
    };
    const finish = (result: SyncSummary): SyncSummary => {
      const failed = result.plan?.failedShards ?? [];
      if (failed.length > 0) {
        deps.log.error(
          `syncMapping: ${failed.length} shard(s) of version ${result.plan?.partition} failed ` +
            `(first: shard ${failed[0]?.shard}, ${failed[0]?.attempts} attempts: ${failed[0]?.error})`,
          // How many: deploy.sh's failed-shards metric and alert read it.
          { summary: result, failedShards: failed.length },
        );
      }
      if (result.outcome === 'refused') {
        deps.log.error(`syncMapping: refused: ${result.reason}`, { summary: result });
      } else {
        const plan = result.plan;
        deps.log.info(
          `syncMapping: ${result.outcome}${result.reason ? ` (${result.reason})` : ''}; version ` +
            `${result.version ?? 'none'}` +
            (plan ? `; ${plan.partition}: ${plan.done}/${plan.shards} shards landed` : '') +
            `; ${result.ids} ids written by this run in ${result.durationMs} ms`,
          { summary: result, trigger: event.trigger, ...versionAge(result.version, deps.now()) },
        );
      }
      return result;
    };
    try {
      const table = await deps.table();
      const meta = await readSyncState(table, 30_000, signal);
      previous = meta.version;
      current = previous;
      const drained = await drainDeadLetters(deps, table, await readPlan(table, signal), signal);
      const { redrive } = drained;
      let { state } = drained;
      if (state && current && state.plan.version <= current.version) {
        // Landed already (its last worker made it current but stopped before removing it).
        await deletePlan(table, state.plan.id, signal);
        state = undefined;
      }
      if (state && deps.now() - Date.parse(state.plan.createdAt) > PLAN_MAX_AGE_MS) {
        deps.log.warn(
          `syncMapping: the plan of version ${state.plan.partition} (${state.plan.createdAt}) is ` +
            'older than BigQuery keeps its results: planning it again',
        );
        const again = await planVersion(
          deps,
          table,
          state.plan.partition,
          current,
          event,
          signal,
          state.plan.version,
        );
        if ('refused' in again) return finish(summary('refused', again.refused));
        state = again.state;
      }
      if (state && pendingShards(state).length === 0) {
        current = (await completeIfLanded(table, state.plan, deps.now(), signal)) ?? current;
        planView = view(state);
        return finish(summary('synced'));
      }

      if (!state) {
        const next = await nextPartition(deps, event, current, signal);
        if ('nothingFound' in next) {
          // The mapping stays empty (the profile function answers 503) until the source or the
          // setting changes: say so where an operator looks, the log line and /health.
          await writeFirstSyncNote(table, next.nothingFound, signal);
          return finish(summary('refused', next.nothingFound.reason, next.nothingFound));
        }
        if (next.partition === undefined) return finish(summary('unchanged'));
        if (current) {
          const wait = Date.parse(current.syncedAt) + settleMs - deps.now();
          if (wait > 0) {
            // Instances may still answer from the version before the current one: a third
            // version's cells would push its cells out (two are kept).
            if (deps.queue || wait > config.JOB_TIMEOUT_MS - grace - (deps.now() - started)) {
              return finish(
                summary(
                  'waiting',
                  `version ${current.partition} became current at ${current.syncedAt}: the next ` +
                    `may start ${Math.ceil(wait / 1000)} s from now, once no instance can still ` +
                    'read the one before it',
                ),
              );
            }
            await sleep(wait, undefined, { signal: stop });
          }
        }
        const planned = await planVersion(deps, table, next.partition, current, event, signal);
        if ('refused' in planned) return finish(summary('refused', planned.refused));
        state = planned.state;
      }

      if (deps.queue) {
        const sent = await dispatch(deps.queue, table, state, redrive, signal);
        planView = { ...view(state), sent };
        return finish(summary('dispatched'));
      }
      const written = await writeShards(deps, table, state, limits, stop, signal);
      persons = written.persons;
      ids = written.ids;
      if (written.completed) current = written.completed;
      const after = await readPlan(table, signal);
      planView = view(after ?? state, after === undefined);
      if (written.completed) return finish(summary('synced'));
      return finish(summary('in_progress'));
    } catch (err) {
      if (err instanceof InvalidQueryError) {
        // A configuration error: a scheduler retry cannot fix it (see toScheduledHttpFunction).
        return finish(summary('refused', err.message));
      }
      const failure = deadline.failure(
        err,
        'syncMapping',
        `; version ${current?.partition ?? 'none'}`,
      );
      const reason = describeError(failure);
      deps.log.error(`syncMapping: failed: ${reason}`, {
        err: failure,
        summary: summary('failed', reason),
      });
      throw failure;
    }
  };
}

/** A plan's state as the summary shows it (`landed`: every shard is done). */
function view(state: PlanState, landed = false): NonNullable<SyncSummary['plan']> {
  const failedShards: FailedShard[] = [];
  let done = 0;
  for (const [shard, s] of [...state.shards].sort((a, b) => a[0] - b[0])) {
    if (s.done) done++;
    else if (s.failure && failedShards.length < LISTED_FAILURES) {
      failedShards.push({
        shard,
        attempts: s.failure.attempts,
        error: s.failure.error,
        deadLettered: s.failure.deadLettered === true,
      });
    }
  }
  return {
    partition: state.plan.partition,
    rows: state.plan.rows,
    shards: state.plan.shards,
    done: landed ? state.plan.shards : done,
    failedShards,
  };
}

/**
 * Drains the dead-letter subscription: each shard of the plan in progress Pub/Sub gave up on is
 * recorded as failed (the operator's record: /health and the run's ERROR line) and sent again.
 * Returns those shards, and the plan's state with their failures.
 */
async function drainDeadLetters(
  deps: SyncJobDeps,
  table: Table,
  state: PlanState | undefined,
  signal: AbortSignal,
): Promise<{ redrive: Set<number>; state: PlanState | undefined }> {
  const redrive = new Set<number>();
  if (!deps.queue) return { redrive, state };
  const letters = await deps.queue.drainDeadLetters(MAX_DEAD_LETTERS, signal);
  const shards = new Map(state?.shards);
  for (const { message, deliveryAttempts } of letters) {
    if (!message) {
      deps.log.warn('syncMapping: dropped a dead letter that is not a shard message');
      continue;
    }
    // A shard of an older plan, or one that landed since: nothing to do.
    if (state?.plan.id !== message.planId) continue;
    const shard = shards.get(message.shard);
    if (shard?.done) continue;
    const last = shard?.failure?.error.replace(DEAD_LETTERED, '');
    const failure = {
      attempts: Math.max(deliveryAttempts, shard?.failure?.attempts ?? 0),
      error:
        `dead-lettered after ${deliveryAttempts} delivery attempts; last error: ` +
        (last ?? 'none recorded (the worker did not answer)'),
      at: new Date(deps.now()).toISOString(),
      deadLettered: true,
    };
    await recordFailure(table, message.planId, message.shard, failure, signal);
    shards.set(message.shard, { ...shard, failure });
    redrive.add(message.shard);
  }
  return { redrive, state: state && { plan: state.plan, shards } };
}

/** The words drainDeadLetters puts before a worker's error. */
const DEAD_LETTERED = /^dead-lettered after \d+ delivery attempts; last error: /;

/**
 * The partition of the next version: the latest within MAPPING_LOOKBACK_DAYS (snapshot mode's
 * rule), when it is newer than the current version (or `{"resync": true}`); on a first run with
 * none, what was found instead.
 */
async function nextPartition(
  deps: SyncJobDeps,
  event: ScheduledEvent,
  current: VersionRecord | undefined,
  signal: AbortSignal,
): Promise<{ partition: string | undefined } | { nothingFound: FirstSyncNote }> {
  const { MAPPING_WINDOW_DAYS: window, MAPPING_LOOKBACK_DAYS: lookback } = deps.config;
  const now = deps.now();
  const today = new Date(now).toISOString().slice(0, 10);
  const earliest = shiftDays(today, -lookback);
  const latest = (await deps.source.partitions(earliest, '9999-12-31', signal)).at(-1);
  if (latest !== undefined) {
    const newer = !current || latest > current.partition;
    const resync =
      event.resync === true || (current !== undefined && current.windowDays !== window);
    return { partition: newer || resync ? latest : undefined };
  }
  if (current) return { partition: undefined };
  // Nothing within the look-back and nothing synced. Only on this path (a first run that will be
  // refused) is the table searched further back, a year of it at most, to say what it holds.
  const newest = (
    await deps.source.partitions(
      shiftDays(earliest, -NEWEST_SEARCH_DAYS),
      shiftDays(earliest, -1),
      signal,
    )
  ).at(-1);
  const setting = `MAPPING_LOOKBACK_DAYS=${lookback}`;
  const searched = `no partition on or after ${earliest} (${setting}, today ${today} UTC)`;
  let reason: string;
  if (newest === undefined) {
    reason =
      `${searched}, nor in the ${NEWEST_SEARCH_DAYS} days before: check MAPPING_TABLE and ` +
      'MAPPING_PARTITION_COLUMN, and that the table is being written';
  } else {
    const age = Math.round(
      (partitionTime(today).getTime() - partitionTime(newest).getTime()) / DAY_MS,
    );
    reason =
      `${searched}; the newest partition is ${newest}, ${age} days old: raise ` +
      `MAPPING_LOOKBACK_DAYS to ${age} or more`;
  }
  return {
    nothingFound: {
      checkedAt: new Date(now).toISOString(),
      earliestAccepted: earliest,
      newestPartition: newest ?? null,
      excludedBy: newest === undefined ? null : setting,
      reason,
    },
  };
}

/** How far back a first run that found nothing looks for the newest partition, to report it. */
const NEWEST_SEARCH_DAYS = 366;

/**
 * Runs the version's query once and records its plan: the result rows split into shards of
 * SYNC_SHARD_PERSONS. Refused when the version shrank past MIN_ROWS_RATIO (or is empty) against
 * the current one, unless `{"force": true}`: a misconfigured source must not wipe the mapping.
 */
async function planVersion(
  deps: SyncJobDeps,
  table: Table,
  partition: string,
  current: VersionRecord | undefined,
  event: ScheduledEvent,
  signal: AbortSignal,
  /** The version being planned again, if it is (its landed cells stay what they are). */
  version?: number,
): Promise<{ state: PlanState } | { refused: string }> {
  const { config } = deps;
  const { result, rows } = await deps.source.runVersionQuery(
    partition,
    config.MAPPING_WINDOW_DAYS,
    signal,
  );
  if (!event.force) {
    if (rows === 0) {
      return {
        refused: `the window ending at ${partition} is empty; {"force": true} writes it anyway`,
      };
    }
    if (current && rows < current.rows * config.MIN_ROWS_RATIO) {
      return {
        refused:
          `the window ending at ${partition} has ${rows} rows against ${current.rows} in the ` +
          `current version (${current.partition}), below MIN_ROWS_RATIO=${config.MIN_ROWS_RATIO}; ` +
          '{"force": true} writes it anyway',
      };
    }
  }
  const plan: SyncPlan = {
    id: newPlanId(),
    partition,
    version: version ?? nextVersionTime(partition, current?.version),
    windowDays: config.MAPPING_WINDOW_DAYS,
    lookbackDays: config.MAPPING_LOOKBACK_DAYS,
    result,
    rows,
    shardRows: config.SYNC_SHARD_PERSONS,
    shards: Math.max(1, Math.ceil(rows / config.SYNC_SHARD_PERSONS)),
    createdAt: new Date(deps.now()).toISOString(),
  };
  await writePlan(table, plan, signal);
  deps.log.info(
    `syncMapping: writing version ${partition}: ${rows} result rows in ${plan.shards} shard(s)`,
    { plan },
  );
  return { state: { plan, shards: new Map() } };
}

/** Publishes the shards not sent yet, and those dead-lettered; returns how many went. */
async function dispatch(
  queue: ShardQueue,
  table: Table,
  state: PlanState,
  redrive: ReadonlySet<number>,
  signal: AbortSignal,
): Promise<number> {
  const shards = pendingShards(state).filter(
    (k) => state.shards.get(k)?.sentAt === undefined || redrive.has(k),
  );
  const { plan } = state;
  await queue.publish(
    shards.map((shard) => ({ planId: plan.id, partition: plan.partition, shard })),
    signal,
  );
  await markSent(table, plan.id, shards, new Date().toISOString(), signal);
  return shards.length;
}

/**
 * Writes the plan's pending shards here, SYNC_INLINE_WORKERS at a time, until they are all done
 * or `stop` aborts. A shard another run still holds is left to the next run.
 */
async function writeShards(
  deps: SyncJobDeps,
  table: Table,
  state: PlanState,
  limits: SyncLimits,
  stop: AbortSignal,
  signal: AbortSignal,
): Promise<{ persons: number; ids: number; completed: VersionRecord | undefined }> {
  const queue = pendingShards(state);
  let persons = 0;
  let ids = 0;
  let completed: VersionRecord | undefined;
  // One shard failing stops the others cleanly (their pages land, their progress is saved).
  const failed = new AbortController();
  const stopAll = AbortSignal.any([stop, failed.signal]);
  const worker = async () => {
    for (
      let shard = queue.shift();
      shard !== undefined && !stopAll.aborted;
      shard = queue.shift()
    ) {
      const workerId = randomBytes(8).toString('hex');
      try {
        const outcome = await runShard({
          table,
          source: deps.source,
          registry: deps.registry,
          limits,
          planId: state.plan.id,
          shard,
          workerId,
          stop: stopAll,
          signal,
          now: deps.now,
        });
        if (outcome.outcome === 'done') {
          persons += outcome.stats.persons;
          ids += outcome.stats.ids;
          completed ??= outcome.completed;
        }
      } catch (err) {
        failed.abort(err);
        if (!signal.aborted) {
          const failure = {
            attempts: (state.shards.get(shard)?.failure?.attempts ?? 0) + 1,
            error: describeError(err),
            at: new Date(deps.now()).toISOString(),
          };
          await recordFailure(table, state.plan.id, shard, failure, signal).catch(() => undefined);
        }
        throw err;
      }
    }
  };
  const workers = Math.max(1, Math.min(deps.config.SYNC_INLINE_WORKERS, queue.length));
  const results = await Promise.allSettled(Array.from({ length: workers }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
  // Workers that land their last shards at the same moment may each see the other's pending:
  // once all have stopped, the plan says whether the version has landed.
  if (!completed && !stopAll.aborted) {
    completed = await completeIfLanded(table, state.plan, deps.now(), signal);
  }
  return { persons, ids, completed };
}

/**
 * How long ago the current version's partition ended (what /health's `bigtable.ageSecs`
 * reports), for the log line: deploy.sh's sync-lag metric and alert read it. Nothing when no
 * version is current.
 */
function versionAge(version: string | null, now: number): { checkpointAgeSecs?: number } {
  if (version === null) return {};
  const ended = partitionTime(version).getTime() + DAY_MS;
  return { checkpointAgeSecs: Math.max(0, Math.round((now - ended) / 1000)) };
}
