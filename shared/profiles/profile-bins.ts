import type { JsonValue } from '../catalog/segment.js';
import type { ProfileBins } from './profile-store.js';

/** A profile record turned into what the API returns: plain attributes and live segment ids. */
export interface DecodedProfile {
  readonly attributes: Readonly<Record<string, JsonValue>>;
  readonly segmentIds: string[];
}

/**
 * Splits bins into segment ids and attributes. The segments bin is either a list of ids or a
 * map of id -> expiry (epoch seconds; 0 or a non-number never expires); expired entries are
 * dropped. Every other bin is an attribute, converted to JSON-safe values.
 */
export function decodeProfileBins(
  bins: ProfileBins,
  segmentsBin: string,
  nowSecs: number,
): DecodedProfile {
  const attributes: [string, JsonValue][] = [];
  let segmentIds: string[] = [];
  for (const [name, value] of Object.entries(bins)) {
    if (name === segmentsBin) segmentIds = liveSegmentIds(value, nowSecs);
    else attributes.push([name, toJsonValue(value)]);
  }
  // Object.fromEntries defines own properties, so a bin named __proto__ stays plain data.
  return { attributes: Object.fromEntries(attributes), segmentIds };
}

function liveSegmentIds(value: unknown, nowSecs: number): string[] {
  if (Array.isArray(value)) {
    const ids: string[] = [];
    for (const item of value) if (isSegmentId(item)) ids.push(String(item));
    return ids;
  }
  const entries =
    value instanceof Map
      ? [...value.entries()]
      : value !== null && typeof value === 'object' && !Buffer.isBuffer(value)
        ? Object.entries(value)
        : [];
  const ids: string[] = [];
  for (const [id, expiry] of entries) {
    if (!isSegmentId(id)) continue;
    const expiresAt = typeof expiry === 'bigint' ? Number(expiry) : expiry;
    if (typeof expiresAt === 'number' && expiresAt > 0 && expiresAt <= nowSecs) continue;
    ids.push(String(id));
  }
  return ids;
}

function isSegmentId(value: unknown): value is string | number | bigint {
  return (
    (typeof value === 'string' && value.length > 0) ||
    (typeof value === 'number' && Number.isInteger(value)) ||
    typeof value === 'bigint'
  );
}

/** Converts a store value to JSON: bytes become base64, big integers strings, maps objects. */
export function toJsonValue(value: unknown): JsonValue {
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
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    return Buffer.from(value).toString('base64');
  }
  if (Array.isArray(value)) return value.map(toJsonValue);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return Object.fromEntries(entries.map(([k, v]) => [String(k), toJsonValue(v)]));
}
