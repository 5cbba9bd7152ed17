import type { Table } from '@google-cloud/bigtable';
import { describeError, InvalidQueryError } from '../../shared/errors.js';
import type { IdTypeRegistry } from '../../shared/id-types.js';
import { jobDeadline } from '../../shared/jobs/job-deadline.js';
import type { ScheduledEvent, ScheduledHandler } from '../../shared/jobs/scheduled-job.js';
import type { Logger } from '../../shared/logger.js';
import type { PartitionSource } from '../../shared/mapping/bigquery-partition-source.js';
import {
  DAY_MS,
  type FirstSyncNote,
  partitionTime,
  shiftDays,
  windowStart,
} from '../../shared/mapping/bigtable-layout.js';
import { readCheckpoint } from '../../shared/mapping/bigtable-mapping-store.js';
import {
  type PartitionSyncResult,
  type SyncLimits,
  syncPartition,
  writeCheckpoint,
  writeFirstSyncNote,
} from '../../shared/mapping/sync-partition.js';
import type { SyncJobConfig } from './config.js';

/** What the sync job needs, injected so tests can pass their own. */
export interface SyncJobDeps {
  readonly config: Pick<
    SyncJobConfig,
    'JOB_TIMEOUT_MS' | 'MAPPING_WINDOW_DAYS' | 'MAPPING_LOOKBACK_DAYS'
  >;
  readonly registry: IdTypeRegistry;
  readonly source: PartitionSource;
  /** The mapping table, opened on first use. */
  readonly table: () => Promise<Table>;
  readonly limits?: SyncLimits;
  readonly log: Logger;
  readonly now: () => number;
}

/** The answer of a sync run (also its log line). */
export interface SyncSummary {
  readonly job: 'syncMapping';
  /**
   * `synced`: partitions written; `unchanged`: nothing new; `refused`: the query is wrong, or a
   * first run found no partition within MAPPING_LOOKBACK_DAYS (`firstSync` says what it found);
   * `failed`: a backend failed or the run timed out (only in the log line: the run answers the
   * error, and the checkpoint and partitions say how far it got).
   */
  readonly outcome: 'synced' | 'unchanged' | 'refused' | 'failed';
  readonly reason?: string;
  /** A first run that found nothing to write: the newest partition, the setting that left it out. */
  readonly firstSync?: FirstSyncNote;
  /** The last partition fully synced, before and after this run (the mapping version). */
  readonly checkpoint: string | null;
  readonly previousCheckpoint: string | null;
  readonly partitions: readonly PartitionSyncResult[];
  readonly ids: number;
  readonly idsPerSecond: number;
  readonly durationMs: number;
}

/**
 * `syncMapping`: keeps the Bigtable mapping current from BigQuery. Writes every partition newer
 * than the checkpoint, oldest first; the checkpoint (in the table itself) advances only after a
 * partition has fully landed, so a run killed mid-partition is repaired by the next one, which
 * writes the same cells again. The first run starts at the window. `{"from", "to"}` backfills a
 * range (and anything between the checkpoint and `to`). BigQuery or Bigtable failing leaves the
 * checkpoint where it was (503: the scheduler retries).
 */
export function createSyncMappingHandler(deps: SyncJobDeps): ScheduledHandler<SyncSummary> {
  const { config } = deps;
  return async (event, context) => {
    const started = deps.now();
    const deadline = jobDeadline(config.JOB_TIMEOUT_MS, context.signal);
    const { signal } = deadline;
    const done: PartitionSyncResult[] = [];
    let previous: string | undefined;
    let checkpoint: string | undefined;
    const summary = (
      outcome: SyncSummary['outcome'],
      reason?: string,
      firstSync?: FirstSyncNote,
    ): SyncSummary => {
      const durationMs = Math.round(deps.now() - started);
      const ids = done.reduce((n, p) => n + p.ids, 0);
      return {
        job: 'syncMapping',
        outcome,
        ...(reason ? { reason } : {}),
        ...(firstSync ? { firstSync } : {}),
        checkpoint: checkpoint ?? null,
        previousCheckpoint: previous ?? null,
        partitions: done,
        ids,
        idsPerSecond: durationMs > 0 ? Math.round((ids * 1000) / durationMs) : ids,
        durationMs,
      };
    };
    try {
      const table = await deps.table();
      previous = await readCheckpoint(table, 30_000, signal);
      checkpoint = previous;
      const { partitions, nothingFound } = await partitionsToSync(deps, event, previous, signal);
      if (nothingFound) {
        // The mapping stays empty (the profile function answers 503) until the source or the
        // setting changes: say so where an operator looks, the log line and /health.
        await writeFirstSyncNote(table, nothingFound, signal);
        const result = summary('refused', nothingFound.reason, nothingFound);
        deps.log.error(`syncMapping: refused: ${nothingFound.reason}`, { summary: result });
        return result;
      }
      for (const partition of partitions) {
        done.push(
          await syncPartition(table, deps.source, partition, deps.registry, signal, deps.limits),
        );
        if (checkpoint === undefined || partition > checkpoint) {
          await writeCheckpoint(table, partition, signal);
          checkpoint = partition;
        }
      }
      const result = summary(done.length > 0 ? 'synced' : 'unchanged');
      deps.log.info(
        `syncMapping: ${result.outcome}, ${done.length} partition(s), ${result.ids} ids, ` +
          `checkpoint ${result.checkpoint ?? 'none'}, ${result.durationMs} ms`,
        {
          summary: result,
          trigger: event.trigger,
          ...checkpointAge(result.checkpoint, deps.now()),
        },
      );
      return result;
    } catch (err) {
      if (err instanceof InvalidQueryError) {
        // A configuration error: a scheduler retry cannot fix it (see toScheduledHttpFunction).
        const result = summary('refused', err.message);
        deps.log.error(`syncMapping: refused: ${err.message}`, { summary: result });
        return result;
      }
      const failure = deadline.failure(err, 'syncMapping', `; checkpoint ${checkpoint ?? 'none'}`);
      const reason = describeError(failure);
      deps.log.error(`syncMapping: failed: ${reason}`, {
        err: failure,
        summary: summary('failed', reason),
        ...checkpointAge(checkpoint ?? null, deps.now()),
      });
      throw failure;
    }
  };
}

/**
 * How long ago the checkpoint's partition ended (what /health's `bigtable.ageSecs` reports), for
 * the log line: deploy.sh's sync-lag metric and alert read it. Nothing when nothing is synced.
 */
function checkpointAge(checkpoint: string | null, now: number): { checkpointAgeSecs?: number } {
  if (checkpoint === null) return {};
  const ended = partitionTime(checkpoint).getTime() + DAY_MS;
  return { checkpointAgeSecs: Math.max(0, Math.round((now - ended) / 1000)) };
}

/** How far back a first run that found nothing looks for the newest partition, to report it. */
const NEWEST_SEARCH_DAYS = 366;

/**
 * The partitions this run writes, oldest first; or, on a first run with no partition within
 * MAPPING_LOOKBACK_DAYS, what it found instead.
 */
async function partitionsToSync(
  deps: SyncJobDeps,
  event: ScheduledEvent,
  checkpoint: string | undefined,
  signal: AbortSignal,
): Promise<{ partitions: string[]; nothingFound?: FirstSyncNote }> {
  const { MAPPING_WINDOW_DAYS: window, MAPPING_LOOKBACK_DAYS: lookback } = deps.config;
  if (event.backfill) {
    const { from, to } = event.backfill;
    // Never leave a gap behind the checkpoint: a range past it starts right after it.
    const start =
      checkpoint !== undefined && to > checkpoint && from > checkpoint ? nextDay(checkpoint) : from;
    return { partitions: await deps.source.partitions(start, to, signal) };
  }
  if (checkpoint !== undefined) {
    return { partitions: await deps.source.partitions(nextDay(checkpoint), '9999-12-31', signal) };
  }
  // First run: only the window ending at the latest partition within the look-back matters (the
  // snapshot query's rule: on or after today - MAPPING_LOOKBACK_DAYS).
  const now = deps.now();
  const today = new Date(now).toISOString().slice(0, 10);
  const earliest = shiftDays(today, -lookback);
  const found = await deps.source.partitions(windowStart(earliest, window), '9999-12-31', signal);
  const latest = found.at(-1);
  if (latest !== undefined && latest >= earliest) {
    const first = windowStart(latest, window);
    return { partitions: found.filter((p) => p >= first) };
  }
  // Nothing within the look-back. Only on this path (a first run that will be refused) is the
  // table searched further back, a year of it at most, to say what it holds.
  const newest =
    latest ??
    (
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
    const range = JSON.stringify({ from: windowStart(newest, window), to: newest });
    reason =
      `${searched}; the newest partition is ${newest}, ${age} days old: raise ` +
      `MAPPING_LOOKBACK_DAYS to ${age} or more, or load it once with ${range}`;
  }
  return {
    partitions: [],
    nothingFound: {
      checkedAt: new Date(now).toISOString(),
      earliestAccepted: earliest,
      newestPartition: newest ?? null,
      excludedBy: newest === undefined ? null : setting,
      reason,
    },
  };
}

function nextDay(partition: string): string {
  return shiftDays(partition, 1);
}
