/** Base for errors this service raises on purpose; anything else is a bug and becomes a 500. */
export class ProfileApiError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An error a caller caused or must be told about: carries the HTTP status and a stable code. */
export class HttpError extends ProfileApiError {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown; headers?: Readonly<Record<string, string>> },
  ) {
    super(message, options);
    this.headers = options?.headers ?? {};
  }
  readonly headers: Readonly<Record<string, string>>;
}

/** Configuration that failed validation; the message names the variable. */
export class ConfigError extends ProfileApiError {}

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

/** A snapshot job refused to publish (empty, shrank too much, or nothing valid). */
export class PublishRefusedError extends ProfileApiError {}

/** The message of an unknown thrown value, for logs only (never for callers). */
export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
