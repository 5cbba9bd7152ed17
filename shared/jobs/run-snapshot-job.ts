import { untilAborted } from '../deadline.js';
import {
  describeError,
  InvalidQueryError,
  PreconditionFailedError,
  PublishRefusedError,
  UnsupportedRequestError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { totalSkipped } from '../skip-counts.js';
import { type Manifest, versionManifestName } from '../snapshots/manifest.js';
import {
  cleanupSignal,
  type PublishResult,
  publishSnapshot,
} from '../snapshots/publish-snapshot.js';
import { republishSnapshot } from '../snapshots/republish-snapshot.js';
import type { SnapshotCodec } from '../snapshots/snapshot-codec.js';
import type { SnapshotStore } from '../snapshots/snapshot-store.js';
import { sweepOrphans } from '../snapshots/sweep-orphans.js';
import { jobDeadline } from './job-deadline.js';
import type { JobSummary, ScheduledEvent } from './scheduled-job.js';

/** One run of a snapshot job: where records come from and where they go. */
export interface SnapshotJobRun<R> {
  readonly job: string;
  readonly store: SnapshotStore;
  readonly codec: SnapshotCodec<R, unknown>;
  /** Valid records, streamed (started only when the run reads the source). */
  readonly records: (signal: AbortSignal) => AsyncIterable<R>;
  /** Source records left out so far, by reason. */
  readonly skippedByReason: () => ReadonlyMap<string, number>;
  /** Read after the stream ends (e.g. the partitions seen in the rows). */
  readonly source: () => Readonly<Record<string, string>>;
  /** Checks the source query without running it, for `{"dryRun": true}` (jobs that can). */
  readonly dryRun?: (
    signal: AbortSignal,
  ) => Promise<{ readonly totalBytesProcessed: number; readonly tables: readonly string[] }>;
  readonly minRowsRatio: number;
  /** Refuse snapshots whose estimated in-memory size is over this (0: no limit). */
  readonly maxMemoryBytes: number;
  /** The whole run (source, upload, publication) ends within this, with a JobTimeoutError. */
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly now: () => number;
}

/**
 * Runs a snapshot job: publishes from the source, or republishes an earlier version
 * (`rollbackTo`), or dry-runs the source query, and logs one summary line.
 * - A refusal (empty, shrunk, over the memory budget) or a lost race is a summary with outcome
 *   `refused`/`conflict`, logged at ERROR/WARNING, not an exception: Cloud Scheduler retries
 *   every non-2xx answer, and a retry would only scan the whole source again to the same end.
 * - Anything a retry may fix (source or store unavailable, timeout) is thrown. The whole run
 *   is bounded by `timeoutMs` (or the platform's signal), whatever part of it stalls.
 * - After a publication, the replaced version is marked superseded and objects no manifest
 *   names are marked for expiry (sweepOrphans).
 */
export async function runSnapshotJob<R>(
  run: SnapshotJobRun<R>,
  event: ScheduledEvent,
  platform?: AbortSignal,
): Promise<JobSummary> {
  const started = run.now();
  const deadline = jobDeadline(run.timeoutMs, platform);
  const { signal } = deadline;
  const context = {
    job: run.job,
    trigger: event.trigger,
    schedulerJob: event.jobName,
    force: event.force,
    ...(event.rollbackTo ? { rollbackTo: event.rollbackTo } : {}),
  };
  const skippedByReason = () => Object.fromEntries(run.skippedByReason());
  const skipped = () => totalSkipped(run.skippedByReason());
  const base = () => ({
    job: run.job,
    skipped: skipped(),
    skippedByReason: skippedByReason(),
    durationMs: Math.round(run.now() - started),
  });
  const onNote = (message: string, detail: Record<string, unknown>) =>
    run.log.warn(`${run.job}: ${message}`, { ...context, ...detail });

  // The caller's mistake, not a failed run: answered 400, not logged as a failure.
  if (event.dryRun && !run.dryRun) throw new UnsupportedRequestError(`${run.job} has no dry run`);
  try {
    if (event.dryRun && run.dryRun) {
      const checked = await untilAborted(run.dryRun(signal), signal);
      const summary: JobSummary = {
        ...base(),
        outcome: 'dry_run',
        version: null,
        previousVersion: null,
        rows: 0,
        bytes: 0,
        source: {},
        dryRun: checked,
      };
      run.log.info(
        `${run.job}: dry run passed, would process ${checked.totalBytesProcessed} bytes`,
        { ...context, summary },
      );
      return summary;
    }

    const result = await untilAborted(publish(run, event, signal, onNote), signal);
    if (result.outcome === 'published' && result.previous) {
      await markSuperseded(run, result.previous, signal);
    }
    const orphans = await sweepOrphans(run.store, run.codec.kind, result.manifest, {
      // A run still uploading is at most this old; its object must not be marked.
      graceMs: 2 * run.timeoutMs,
      now: run.now,
      signal,
    }).catch((err: unknown) => {
      run.log.warn(`${run.job}: orphan sweep failed`, { ...context, err });
      return [];
    });
    const summary: JobSummary = {
      ...base(),
      outcome: event.rollbackTo && result.outcome === 'published' ? 'rolled_back' : result.outcome,
      version: result.manifest.version,
      previousVersion: result.previous?.version ?? null,
      rows: result.manifest.rows,
      bytes: result.manifest.bytes,
      ...(result.manifest.memoryBytes === undefined
        ? {}
        : { memoryBytes: result.manifest.memoryBytes }),
      source: result.manifest.source,
      orphansMarked: orphans.length,
    };
    run.log.info(
      `${run.job}: ${summary.outcome} ${summary.version}, ${summary.rows} rows, ${summary.bytes} bytes, ` +
        `${summary.skipped} skipped${describeSkips(summary.skippedByReason)}, ${summary.durationMs} ms`,
      { ...context, summary },
    );
    return summary;
  } catch (err) {
    // A query the source rejects as written is a configuration error: retrying cannot fix it.
    // (A dry run reports it to its caller instead.)
    const misconfigured = err instanceof InvalidQueryError && !event.dryRun;
    if (
      err instanceof PublishRefusedError ||
      err instanceof PreconditionFailedError ||
      misconfigured
    ) {
      return declined(run, err, base(), context);
    }
    const failure = deadline.failure(err, run.job);
    run.log.error(
      `${run.job}: failed after ${Math.round(run.now() - started)} ms: ${describeError(failure)}`,
      { ...context, err: failure, skipped: skipped(), skippedByReason: skippedByReason() },
    );
    throw failure;
  }
}

function publish<R>(
  run: SnapshotJobRun<R>,
  event: ScheduledEvent,
  signal: AbortSignal,
  onNote: (message: string, detail: Record<string, unknown>) => void,
): Promise<PublishResult> {
  if (event.rollbackTo) {
    return republishSnapshot(run.store, run.codec.kind, run.codec.extension, event.rollbackTo, {
      signal,
      onNote,
      maxMemoryBytes: run.maxMemoryBytes,
    });
  }
  return publishSnapshot(run.store, run.codec, run.records(signal), {
    source: run.source,
    minRowsRatio: run.minRowsRatio,
    maxMemoryBytes: run.maxMemoryBytes,
    force: event.force,
    signal,
    onNote,
  });
}

/** A refusal or a lost race: answered as a summary (a retry cannot change it), logged loudly. */
async function declined<R>(
  run: SnapshotJobRun<R>,
  err: PublishRefusedError | PreconditionFailedError | InvalidQueryError,
  base: Pick<JobSummary, 'job' | 'skipped' | 'skippedByReason' | 'durationMs'>,
  context: Record<string, unknown>,
): Promise<JobSummary> {
  const refused = !(err instanceof PreconditionFailedError);
  const current = await run.store.readManifest(run.codec.kind, cleanupSignal()).then(
    (stored) => (stored ? safeVersion(stored.body) : null),
    () => null,
  );
  const what = err instanceof PublishRefusedError ? err.refused : undefined;
  const summary: JobSummary = {
    ...base,
    outcome: refused ? 'refused' : 'conflict',
    reason: err.message,
    version: current,
    previousVersion: current,
    rows: what?.rows ?? 0,
    bytes: what?.bytes ?? 0,
    ...(what?.memoryBytes === undefined ? {} : { memoryBytes: what.memoryBytes }),
    source: {},
  };
  const log = refused ? run.log.error.bind(run.log) : run.log.warn.bind(run.log);
  log(`${run.job}: ${summary.outcome}: ${err.message}`, { ...context, summary });
  return summary;
}

async function markSuperseded<R>(
  run: SnapshotJobRun<R>,
  previous: Manifest,
  signal: AbortSignal,
): Promise<void> {
  // Best effort: a version left unmarked is marked by a later run's orphan sweep.
  for (const name of [previous.object, versionManifestName(previous)]) {
    await run.store.markSuperseded(name, signal).catch((err: unknown) => {
      run.log.warn(`${run.job}: could not mark ${name} superseded`, { err });
    });
  }
}

function describeSkips(byReason: Readonly<Record<string, number>>): string {
  const parts = Object.entries(byReason)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

function safeVersion(body: string): string | null {
  try {
    const version = (JSON.parse(body) as { version?: unknown }).version;
    return typeof version === 'string' ? version : null;
  } catch {
    return null;
  }
}
