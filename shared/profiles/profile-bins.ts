import { SegmentTable } from './segment-table.js';

/** Receives the live segment ids of a bin, one call each (an object: no closure per record). */
export interface SegmentVisitor {
  segment(id: string | number): void;
}

/**
 * Calls `visitor.segment` with each live segment id of a segments bin, in record order, as the record
 * holds it (integer or string): a list of ids, or a map of id -> expiry.
 */
export function forEachLiveSegment(value: unknown, nowSecs: number, visitor: SegmentVisitor): void {
  // The compact form apart, in a function small enough for V8 to inline with the visitor.
  if (value instanceof SegmentTable) value.forEachLive(nowSecs, visitor);
  else forEachLiveInBin(value, nowSecs, visitor);
}

/** forEachLiveSegment over a bin as the store gave it (see there). */
function forEachLiveInBin(value: unknown, nowSecs: number, visitor: SegmentVisitor): void {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'number') {
        if (Number.isInteger(item)) visitor.segment(item);
      } else if (typeof item === 'string') {
        if (item.length > 0) visitor.segment(item);
      } else if (typeof item === 'bigint') {
        visitor.segment(Number.isSafeInteger(Number(item)) ? Number(item) : item.toString());
      }
    }
    return;
  }
  if (value instanceof Map) {
    // forEach: no entry array per segment, unlike for...of with destructuring.
    (value as Map<unknown, unknown>).forEach((expiry, id) => {
      if (isSegmentId(id) && isLive(expiry, nowSecs))
        visitor.segment(typeof id === 'bigint' ? String(id) : id);
    });
    return;
  }
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return;
  const map = value as Record<string, unknown>;
  // Object.keys then an indexed loop: a quarter cheaper than for...in on the objects the
  // Aerospike client builds (integer keys in dictionary elements, which V8 sorts either way).
  const ids = Object.keys(map);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as string;
    if (id.length > 0 && isLive(map[id], nowSecs)) visitor.segment(id);
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
