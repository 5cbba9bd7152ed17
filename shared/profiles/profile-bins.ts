import type { ByteWriter } from '../byte-writer.js';
import { toJsonValue } from '../json-value.js';
import type { ProfileBins } from './profile-store.js';
import { SegmentTable } from './segment-table.js';

/**
 * Writes the attributes (every bin but the segments bin and `skip`) as JSON object members,
 * `"name":value,...` without the braces, straight from the bins into `out`: no intermediate
 * object or string, and a bin named `__proto__` is plain text. Returns how many it wrote.
 */
export function writeAttributeMembers(
  out: ByteWriter,
  bins: ProfileBins,
  segmentsBin: string,
  skip?: ReadonlySet<string>,
): number {
  let written = 0;
  const names = Object.keys(bins);
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (name === segmentsBin || skip?.has(name)) continue;
    const quoted = quotedName(name);
    out.bytes(written++ === 0 ? quoted.first : quoted.next);
    writeJsonValue(out, bins[name]);
  }
  return written;
}

/** A bin name as a member name, `"name":`, and the same after a comma. */
interface QuotedName {
  readonly first: Buffer;
  readonly next: Buffer;
}

/** Bin names repeat on every record: each is quoted and encoded once (up to a bound). */
const QUOTED_NAMES = new Map<string, QuotedName>();
const MAX_QUOTED_NAMES = 4096;

function quotedName(name: string): QuotedName {
  let quoted = QUOTED_NAMES.get(name);
  if (quoted === undefined) {
    const next = Buffer.from(`,${JSON.stringify(name)}:`);
    quoted = { first: next.subarray(1), next };
    if (QUOTED_NAMES.size < MAX_QUOTED_NAMES) QUOTED_NAMES.set(name, quoted);
  }
  return quoted;
}

/** A bin value as JSON: scalars directly, anything else through toJsonValue. */
function writeJsonValue(out: ByteWriter, value: unknown): void {
  switch (typeof value) {
    case 'string':
      out.jsonString(value);
      return;
    case 'number':
      out.text(Number.isFinite(value) ? String(value) : JSON.stringify(String(value)));
      return;
    case 'boolean':
      out.text(value ? 'true' : 'false');
      return;
    default:
      out.text(JSON.stringify(toJsonValue(value)));
  }
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
  // The compact form apart, in a function small enough for V8 to inline with the visitor.
  if (value instanceof SegmentTable) value.forEachLive(nowSecs, visit);
  else forEachLiveInBin(value, nowSecs, visit);
}

/** forEachLiveSegment over a bin as the store gave it (see there). */
function forEachLiveInBin(
  value: unknown,
  nowSecs: number,
  visit: (id: string | number) => void,
): void {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
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
    // forEach: no entry array per segment, unlike for...of with destructuring.
    (value as Map<unknown, unknown>).forEach((expiry, id) => {
      if (isSegmentId(id) && isLive(expiry, nowSecs))
        visit(typeof id === 'bigint' ? String(id) : id);
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
