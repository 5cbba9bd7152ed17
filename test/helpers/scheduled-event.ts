import type { ScheduledEvent } from '../../shared/jobs/scheduled-job.js';

/** A scheduled job called by hand with an empty body: what `POST {}` without scheduler headers gives. */
export const MANUAL_RUN: ScheduledEvent = Object.freeze({
  trigger: 'manual',
  jobName: undefined,
  scheduleTime: undefined,
  force: false,
});
