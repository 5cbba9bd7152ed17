/** Cloud Logging severities we use. */
export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

const RANK: Readonly<Record<Severity, number>> = { DEBUG: 0, INFO: 1, WARNING: 2, ERROR: 3 };

/** Structured logger: one JSON object per line, the way Cloud Logging reads stdout. */
export interface Logger {
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
  /** A logger that adds `fields` to every line (e.g. the request's trace). */
  child(fields: Readonly<Record<string, unknown>>): Logger;
}

/** Where lines go and which are kept. */
export interface LoggerOptions {
  readonly sink?: (line: string) => void;
  readonly minSeverity?: Severity;
  readonly fields?: Readonly<Record<string, unknown>>;
}

/** A JSON-lines logger; an `err` field is expanded into name, message, cause and stack. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const sink = options.sink ?? ((line: string) => process.stdout.write(line));
  const min = RANK[options.minSeverity ?? 'INFO'];
  const base = options.fields ?? {};
  const write = (
    severity: Severity,
    message: string,
    fields?: Readonly<Record<string, unknown>>,
  ) => {
    if (RANK[severity] < min) return;
    const entry: Record<string, unknown> = { severity, message, ...base, ...fields };
    if (fields?.err !== undefined) {
      const err = fields.err;
      entry.err = serialiseError(err);
      // Error Reporting groups entries whose stack_trace holds a stack.
      if (err instanceof Error && err.stack && severity === 'ERROR') entry.stack_trace = err.stack;
    }
    sink(`${safeStringify(entry)}\n`);
  };
  return {
    debug: (m, f) => write('DEBUG', m, f),
    info: (m, f) => write('INFO', m, f),
    warn: (m, f) => write('WARNING', m, f),
    error: (m, f) => write('ERROR', m, f),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything, for tests and tools that print their own output. */
export const silentLogger: Logger = createLogger({ sink: () => undefined });

/**
 * Trace correlation fields from `X-Cloud-Trace-Context` (`TRACE/SPAN;o=1`) or W3C
 * `traceparent` (`00-TRACE-SPAN-01`), in the form Cloud Logging links to the request.
 */
export function traceFields(
  headers: Readonly<Record<string, string>>,
  projectId: string | undefined,
): Record<string, unknown> {
  let traceId: string | undefined;
  let spanId: string | undefined;
  let sampled: boolean | undefined;
  const cloud = headers['x-cloud-trace-context'];
  const w3c = headers.traceparent;
  const cloudMatch = cloud ? /^([0-9a-f]{32})(?:\/(\d{1,20}))?(?:;o=([01]))?/i.exec(cloud) : null;
  const w3cMatch = w3c
    ? /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/i.exec(w3c)
    : null;
  if (w3cMatch) {
    traceId = w3cMatch[1];
    spanId = w3cMatch[2];
    sampled = (Number.parseInt(w3cMatch[3] ?? '0', 16) & 1) === 1;
  } else if (cloudMatch) {
    traceId = cloudMatch[1];
    spanId = cloudMatch[2] ? BigInt(cloudMatch[2]).toString(16).padStart(16, '0') : undefined;
    sampled = cloudMatch[3] === '1';
  }
  if (!traceId) return {};
  const fields: Record<string, unknown> = {
    'logging.googleapis.com/trace': projectId ? `projects/${projectId}/traces/${traceId}` : traceId,
  };
  if (spanId) fields['logging.googleapis.com/spanId'] = spanId;
  if (sampled !== undefined) fields['logging.googleapis.com/trace_sampled'] = sampled;
  return fields;
}

function serialiseError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return String(err);
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (err.cause !== undefined && depth < 5) out.cause = serialiseError(err.cause, depth + 1);
  return out;
}

function safeStringify(entry: Record<string, unknown>): string {
  try {
    return JSON.stringify(entry, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return JSON.stringify({ severity: entry.severity, message: String(entry.message) });
  }
}
