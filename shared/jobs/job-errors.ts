import {
  BackendUnavailableError,
  ConfigError,
  InvalidQueryError,
  JobTimeoutError,
  PreconditionFailedError,
  SnapshotIntegrityError,
  UnknownVersionError,
  UnsupportedRequestError,
} from '../errors.js';

/** How a failed job run is answered: an HTTP status and our error code. */
export interface JobFailure {
  readonly status: number;
  readonly code: string;
}

/**
 * What a job's failure means to its caller. Cloud Scheduler retries every non-2xx answer (up to
 * the job's retry count), so 5xx is kept for failures a retry can fix (source or store
 * unavailable 503, timeout 504) and for what an operator must fix (misconfigured, a corrupt
 * snapshot, a bug: 500); 4xx answers manual calls (a bad query or body 400, an unsupported dry
 * run 400, an unknown rollback version 404).
 */
export function classifyJobError(err: unknown): JobFailure {
  if (err instanceof InvalidQueryError) return { status: 400, code: 'invalid_query' };
  if (err instanceof UnknownVersionError) return { status: 404, code: 'unknown_version' };
  if (err instanceof UnsupportedRequestError) return { status: 400, code: 'not_supported' };
  if (err instanceof ConfigError) return { status: 500, code: 'misconfigured' };
  if (err instanceof BackendUnavailableError) return { status: 503, code: 'source_unavailable' };
  if (err instanceof JobTimeoutError) return { status: 504, code: 'timeout' };
  if (err instanceof PreconditionFailedError) return { status: 503, code: 'publish_conflict' };
  if (err instanceof SnapshotIntegrityError) return { status: 500, code: 'snapshot_error' };
  if (err instanceof Error && err.name === 'TimeoutError') return { status: 504, code: 'timeout' };
  return { status: 500, code: 'internal' };
}
