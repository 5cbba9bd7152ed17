/** Base for errors this service raises on purpose; anything else is a bug and becomes a 500. */
export class ProfileApiError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * An answer a caller gets instead of the normal one (bad input, unknown id, unavailable): the
 * HTTP status, a stable code and a message written for callers. Thrown through the handler, but
 * deliberately not an Error: client errors are expected (and anyone can make them frequent), and
 * an Error would capture a stack trace each time.
 */
export class HttpError {
  readonly name = 'HttpError';
  readonly headers: Readonly<Record<string, string>>;
  readonly cause: unknown;

  constructor(
    readonly statusCode: number,
    readonly code: string,
    readonly message: string,
    options?: { cause?: unknown; headers?: Readonly<Record<string, string>> },
  ) {
    this.headers = options?.headers ?? {};
    this.cause = options?.cause;
  }
}

/** Configuration that failed validation; the message names the variable. */
export class ConfigError extends ProfileApiError {}

/** A request the function does not support (a dry run of a job that has none). */
export class UnsupportedRequestError extends ProfileApiError {}

/** A backend (profile store, snapshot store) did not answer in time or at all. */
export class BackendUnavailableError extends ProfileApiError {
  constructor(
    readonly backend: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A snapshot object or manifest is missing, corrupt, or does not match its manifest. */
export class SnapshotIntegrityError extends ProfileApiError {}

/** A compare-and-swap or create-only write lost against another writer. */
export class PreconditionFailedError extends ProfileApiError {}

/**
 * A snapshot job refused to publish (empty, shrank too much, too large for the instances'
 * memory): the source must change before a run can succeed, so a retry cannot help.
 */
export class PublishRefusedError extends ProfileApiError {
  constructor(
    message: string,
    /** What was refused, for the job's summary. */
    readonly refused?: {
      readonly rows: number;
      readonly bytes: number;
      readonly memoryBytes?: number;
    },
  ) {
    super(message);
  }
}

/**
 * A snapshot that instances must not load: its data would not fit the memory budget. The last
 * good snapshot keeps serving.
 */
export class SnapshotTooLargeError extends ProfileApiError {}

/** The source rejected a query as written (wrong table, column or type): fix the configuration. */
export class InvalidQueryError extends ProfileApiError {}

/** A rollback named a version the store does not keep (never published, or expired). */
export class UnknownVersionError extends ProfileApiError {}

/** A whole job run went past its time budget (JOB_TIMEOUT_MS or the platform's). */
export class JobTimeoutError extends ProfileApiError {}

/** The message of an unknown thrown value, for logs only (never for callers). */
export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
