import { type JsonValue, toJsonValue } from '../json-value.js';
import type { ProfileBins } from './profile-store.js';

/** Every bin but the segments bin, as JSON-safe values. */
export function attributesOf(bins: ProfileBins, segmentsBin: string): Record<string, JsonValue> {
  const attributes: [string, JsonValue][] = [];
  for (const name in bins) {
    if (name !== segmentsBin) attributes.push([name, toJsonValue(bins[name])]);
  }
  // Object.fromEntries defines own properties, so a bin named __proto__ stays plain data.
  return Object.fromEntries(attributes);
}

/**
 * Calls `visit` with each live segment id of a segments bin, in record order, as the record
 * holds it (integer or string): a list of ids, or a map of id -> expiry.
 */
export function forEachLiveSegment(
  value: unknown,
  nowSecs: number,
  visit: (id: string | number) => void,
): void {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item === 'number') {
        if (Number.isInteger(item)) visit(item);
      } else if (typeof item === 'string') {
        if (item.length > 0) visit(item);
      } else if (typeof item === 'bigint') {
        visit(Number.isSafeInteger(Number(item)) ? Number(item) : item.toString());
      }
    }
    return;
  }
  if (value instanceof Map) {
    for (const [id, expiry] of value) {
      if (isSegmentId(id) && isLive(expiry, nowSecs))
        visit(typeof id === 'bigint' ? String(id) : id);
    }
    return;
  }
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return;
  const map = value as Record<string, unknown>;
  for (const id in map) {
    if (id.length > 0 && isLive(map[id], nowSecs)) visit(id);
  }
}

function isLive(expiry: unknown, nowSecs: number): boolean {
  const at = typeof expiry === 'bigint' ? Number(expiry) : expiry;
  return !(typeof at === 'number' && at > 0 && at <= nowSecs);
}

function isSegmentId(value: unknown): value is string | number | bigint {
  return (
    (typeof value === 'string' && value.length > 0) ||
    (typeof value === 'number' && Number.isInteger(value)) ||
    typeof value === 'bigint'
  );
}
