/** Any value that survives a JSON round trip unchanged. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/** Converts a driver's object (returns undefined to let the generic rules apply). */
export type SpecialObject = (value: object) => JsonValue | undefined;

/**
 * Converts what a database driver returns into plain JSON: big integers beyond 2^53 become
 * strings, non-finite numbers strings, bytes base64, dates ISO strings, maps objects (built with
 * own properties, so a `__proto__` key stays data). `special` handles a driver's own types first.
 */
export function toJsonValue(value: unknown, special?: SpecialObject): JsonValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    case 'object':
      break;
    default:
      return String(value);
  }
  const converted = special?.(value);
  if (converted !== undefined) return converted;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array)
    return Buffer.from(value).toString('base64');
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Array.isArray(value)) return value.map((v) => toJsonValue(v, special));
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return Object.fromEntries(entries.map(([k, v]) => [String(k), toJsonValue(v, special)]));
}
