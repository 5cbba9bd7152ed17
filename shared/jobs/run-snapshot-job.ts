import { describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import { versionManifestName } from '../snapshots/manifest.js';
import { publishSnapshot } from '../snapshots/publish-snapshot.js';
import type { SnapshotCodec } from '../snapshots/snapshot-codec.js';
import type { SnapshotStore } from '../snapshots/snapshot-store.js';
import type { JobSummary, ScheduledEvent } from './scheduled-job.js';

/** One run of a snapshot job: where records come from and where they go. */
export interface SnapshotJobRun<R> {
  readonly job: string;
  readonly store: SnapshotStore;
  readonly codec: SnapshotCodec<R, unknown>;
  /** Valid records, streamed; may count skipped ones into `skipped()`. */
  readonly records: AsyncIterable<R>;
  readonly skipped: () => number;
  /** Read after the stream ends (e.g. the partition date seen in the rows). */
  readonly source: () => Readonly<Record<string, string>>;
  readonly minRowsRatio: number;
  readonly log: Logger;
  readonly now: () => number;
}

/**
 * Publishes a snapshot from a record stream and logs a one-line summary; any failure is
 * logged and rethrown (the current snapshot stays as it was, the scheduler retries).
 */
export async function runSnapshotJob<R>(
  run: SnapshotJobRun<R>,
  event: ScheduledEvent,
): Promise<JobSummary> {
  const started = run.now();
  const context = {
    job: run.job,
    trigger: event.trigger,
    schedulerJob: event.jobName,
    force: event.force,
  };
  try {
    const result = await publishSnapshot(run.store, run.codec, run.records, {
      source: run.source,
      minRowsRatio: run.minRowsRatio,
      force: event.force,
    });
    const previous = result.previous;
    if (result.outcome === 'published' && previous) {
      // Best effort: a version left unmarked is only kept longer than the retention says.
      for (const name of [previous.object, versionManifestName(previous)]) {
        await run.store.markSuperseded(name).catch((err: unknown) => {
          run.log.warn(`${run.job}: could not mark ${name} superseded`, { err });
        });
      }
    }
    const summary: JobSummary = {
      job: run.job,
      outcome: result.outcome,
      version: result.manifest.version,
      previousVersion: result.previous?.version ?? null,
      rows: result.manifest.rows,
      bytes: result.manifest.bytes,
      skipped: run.skipped(),
      source: result.manifest.source,
      durationMs: Math.round(run.now() - started),
    };
    run.log.info(
      `${run.job}: ${summary.outcome} ${summary.version}, ${summary.rows} rows, ${summary.bytes} bytes, ` +
        `${summary.skipped} skipped, ${summary.durationMs} ms`,
      { ...context, summary },
    );
    return summary;
  } catch (err) {
    run.log.error(
      `${run.job}: failed after ${Math.round(run.now() - started)} ms: ${describeError(err)}`,
      {
        ...context,
        err,
        skipped: run.skipped(),
      },
    );
    throw err;
  }
}
