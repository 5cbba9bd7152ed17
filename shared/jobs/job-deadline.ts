import { JobTimeoutError } from '../errors.js';

/** A job run's deadline: its own time limit (JOB_TIMEOUT_MS) or the platform's signal. */
export interface JobDeadline {
  /** Aborts at whichever comes first. */
  readonly signal: AbortSignal;
  /** `err`, or a JobTimeoutError caused by it when the run's own limit ended the run. */
  failure(err: unknown, job: string, detail?: string): unknown;
}

/** The deadline of one run of `timeoutMs`, cut short by `platform` when it aborts first. */
export function jobDeadline(timeoutMs: number, platform?: AbortSignal): JobDeadline {
  const own = AbortSignal.timeout(timeoutMs);
  return {
    signal: platform ? AbortSignal.any([own, platform]) : own,
    failure: (err, job, detail = '') =>
      own.aborted
        ? new JobTimeoutError(
            `${job} did not finish within ${timeoutMs} ms (JOB_TIMEOUT_MS)${detail}`,
            { cause: err },
          )
        : err,
  };
}
