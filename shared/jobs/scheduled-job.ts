/** A scheduled job invocation, as an AWS-style handler sees it (no HTTP objects). */
export interface ScheduledEvent {
  /** `cloud-scheduler` when the scheduler's headers are present, else `manual`. */
  readonly trigger: 'cloud-scheduler' | 'manual';
  readonly jobName: string | undefined;
  readonly scheduleTime: string | undefined;
  /** Publish even an empty or shrunken snapshot. */
  readonly force: boolean;
  /** Check the source query without running it (jobs that support it); publish nothing. */
  readonly dryRun?: boolean;
  /** Republish this earlier version as a new current version instead of reading the source. */
  readonly rollbackTo?: string | undefined;
  /** Write the latest window again as a new version even when it is the current one (syncMapping). */
  readonly resync?: boolean;
}

/**
 * How a run ended. `refused` and `conflict` are answered as successes to the scheduler: a
 * retry cannot change them (the source must change first, or another run already published).
 */
export type JobOutcome =
  | 'published'
  | 'unchanged'
  | 'rolled_back'
  | 'refused'
  | 'conflict'
  | 'dry_run';

/** The one-line summary a job run logs and answers. */
export interface JobSummary {
  readonly job: string;
  readonly outcome: JobOutcome;
  /** Why a run was refused or lost a race, in words an operator can act on. */
  readonly reason?: string;
  /** The version now current (null when none is, e.g. a refused first run). */
  readonly version: string | null;
  readonly previousVersion: string | null;
  readonly rows: number;
  readonly bytes: number;
  /** Estimated memory of the snapshot once loaded by an instance (mapping only). */
  readonly memoryBytes?: number;
  /** Source records left out, all reasons together. */
  readonly skipped: number;
  /** Source records left out, by reason (e.g. `no_person`, `invalid_id`). */
  readonly skippedByReason: Readonly<Record<string, number>>;
  readonly source: Readonly<Record<string, string>>;
  /** Dry runs: what the query would read. */
  readonly dryRun?: { readonly totalBytesProcessed: number; readonly tables: readonly string[] };
  /** Objects no manifest names that this run marked for expiry (see sweepOrphans). */
  readonly orphansMarked?: number;
  readonly durationMs: number;
}

/** A scheduled job: throws on a failure that a retry may fix, so that the scheduler retries. */
export type ScheduledHandler<S = JobSummary> = (
  event: ScheduledEvent,
  context: { readonly signal?: AbortSignal },
) => Promise<S>;
