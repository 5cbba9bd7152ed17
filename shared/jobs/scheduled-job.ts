/** A scheduled job invocation, as an AWS-style handler sees it (no HTTP objects). */
export interface ScheduledEvent {
  /** `cloud-scheduler` when the scheduler's headers are present, else `manual`. */
  readonly trigger: 'cloud-scheduler' | 'manual';
  readonly jobName: string | undefined;
  readonly scheduleTime: string | undefined;
  /** Publish even an empty or shrunken snapshot. */
  readonly force: boolean;
}

/** The one-line summary a job run logs and answers. */
export interface JobSummary {
  readonly job: string;
  readonly outcome: 'published' | 'unchanged';
  readonly version: string;
  readonly previousVersion: string | null;
  readonly rows: number;
  readonly bytes: number;
  /** Source records skipped as invalid. */
  readonly skipped: number;
  readonly source: Readonly<Record<string, string>>;
  readonly durationMs: number;
}

/** A scheduled job: throws on failure so that the scheduler retries. */
export type ScheduledHandler = (
  event: ScheduledEvent,
  context: { readonly signal?: AbortSignal },
) => Promise<JobSummary>;
