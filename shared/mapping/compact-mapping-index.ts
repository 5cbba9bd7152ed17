import { SnapshotIntegrityError, SnapshotTooLargeError } from '../errors.js';
import type { IdTypeRegistry } from '../id-types.js';
import type { LinkedId, MappingHit, MappingIndex } from './mapping-index.js';

/** Longest id kept; longer ones cannot be requested (MAX_ID_LENGTH is at most 4096). */
const MAX_ID_CHARS = 4096;
/** Type codes live in 5 bits of each id's header byte. */
const MAX_TYPES = 32;
/** Hex ids with more dash-separated groups than this are stored as plain bytes. */
const MAX_GROUPS = 8;
// Linear probing slows sharply past half full; 8 bytes per id buys short probes.
const LOAD_FACTOR = 0.5;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const DASH = 0x2d;

// How an id's bytes are stored, in the top two bits of its header byte.
const RAW = 0; // the ASCII bytes as they are
const HEX_LOWER = 1; // [0-9a-f] digits two per byte, dashes described by a layout
const HEX_UPPER = 2; // [0-9A-F] likewise
const ODD = 0x20; // the last payload byte holds one digit only
const TYPE_MASK = 0x1f;
const LOWER_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const UPPER_DIGITS = Buffer.from('0123456789ABCDEF', 'latin1');
/** Where idAt unpacks an id (single-threaded, synchronous use). */
const ID_SCRATCH = Buffer.allocUnsafe(2 * MAX_ID_CHARS);

/** Index bytes per id besides its packed text: offset (4) and hash slot (4 at half load). */
const ID_OVERHEAD_BYTES = 4 + 4 / LOAD_FACTOR;
/** Index bytes per person: where its ids start. */
const PERSON_BYTES = 4;

/**
 * Bytes the compact index will hold for a mapping with these ids, computed while a job encodes
 * it, so that the manifest can say how much memory a snapshot needs before anyone downloads it.
 */
export class CompactIndexSize {
  private pool = 0;
  private ids = 0;
  private persons = 0;

  /** Counts one person's ids (ids only: an id's type lives in its header byte). */
  addPerson(ids: readonly string[]): void {
    if (ids.length === 0) return;
    this.persons++;
    for (const id of ids) {
      this.pool += packedIdBytes(id);
      this.ids++;
    }
  }

  get bytes(): number {
    const slots = Math.max(1024, Math.ceil(this.ids / LOAD_FACTOR)) * 4;
    return Math.ceil(
      this.pool + this.ids * 4 + slots + this.ids / 8 + (this.persons + 1) * PERSON_BYTES,
    );
  }
}

/** Pool bytes of one id: a header and its text, or header, layout and two hex digits per byte. */
export function packedIdBytes(id: string): number {
  let lower = true;
  let upper = true;
  let groups = 0;
  let run = 0;
  let digits = 0;
  for (let k = 0; k < id.length; k++) {
    const c = id.charCodeAt(k);
    if (c === DASH) {
      if (run === 0 || groups >= MAX_GROUPS - 1) lower = upper = false;
      else groups++;
      run = 0;
      continue;
    }
    run++;
    digits++;
    if (c >= 0x61 && c <= 0x66) upper = false;
    else if (c >= 0x41 && c <= 0x46) lower = false;
    else if (c < 0x30 || c > 0x39) lower = upper = false;
  }
  if (run === 0) lower = upper = false;
  return lower || upper ? 2 + Math.ceil(digits / 2) : 1 + id.length;
}

/** What a build skipped without rejecting the snapshot. */
export interface CompactBuildStats {
  /** Ids whose type code the registry does not know. */
  unknownTypeIds: number;
  /** Ids no request can ask for (not printable ASCII, or too long). */
  unreachableIds: number;
  /** (type, id) pairs seen before, in this person or an earlier one: the first occurrence keeps them. */
  duplicateIds: number;
}

/** Where the digits of a hex id go: its dash-separated group lengths. */
type Layout = readonly number[];

/**
 * Builds the identity mapping without one JS object per id. All ids live in one byte pool, each
 * as a header byte (storage kind, type) and its bytes; hex ids (UUIDs, hashes, numbers) are
 * packed two digits per byte, their dashes described by a shared layout. The ids of a person
 * are stored next to each other, and an open-addressing hash table of id numbers sits in a
 * typed array. A snapshot line is parsed straight from its bytes; lines with JSON escapes take
 * the slower JSON.parse path. About 10 bytes per id plus half its length for hex ids.
 */
export class CompactMappingIndexBuilder {
  readonly stats: CompactBuildStats = { unknownTypeIds: 0, unreachableIds: 0, duplicateIds: 0 };
  private pool = Buffer.allocUnsafe(1 << 20);
  private poolLength = 0;
  private offsets = new Uint32Array(1 << 16);
  private hashes = new Uint32Array(1 << 16);
  private personStarts = new Uint32Array(1 << 14);
  private ids = 0;
  private persons = 0;
  private marks = new Int32Array(64);
  private readonly codes: string[];
  private readonly codeBytes: Buffer[];
  private readonly layouts: number[][] = [];
  private readonly groups = new Int32Array(MAX_GROUPS);

  /**
   * `expected` (from the manifest) sizes the buffers up front, so that they are not grown by
   * doubling (which holds old and new copies at once); `maxBytes` (0: none) stops a build that
   * outgrows the memory budget, whatever the manifest claimed.
   */
  constructor(
    registry: IdTypeRegistry,
    expected?: { readonly ids: number; readonly memoryBytes: number | undefined },
    private readonly maxBytes = 0,
  ) {
    this.codes = registry.all.map((t) => t.code);
    if (this.codes.length > MAX_TYPES) throw new Error(`at most ${MAX_TYPES} id types`);
    this.codeBytes = this.codes.map((c) => Buffer.from(c, 'latin1'));
    if (expected && expected.ids > 0) {
      this.offsets = new Uint32Array(expected.ids + 2);
      this.hashes = new Uint32Array(expected.ids + 2);
      if (expected.memoryBytes !== undefined) {
        // The estimate's pool share; persons' bytes make it a slight over-estimate.
        const pool = expected.memoryBytes - expected.ids * (ID_OVERHEAD_BYTES + 1 / 8);
        this.pool = Buffer.allocUnsafe(Math.max(1 << 16, Math.ceil(pool)));
      }
    }
  }

  /**
   * Adds the person on `line[start, end)` (`["id","code",...]`) and returns how many ids it
   * listed (skipped ones included, so that rows can be checked against the manifest).
   */
  addLine(line: Buffer, start: number, end: number): number {
    const fast = this.tryAddLine(line, start, end);
    if (fast >= 0) return fast;
    let flat: unknown;
    try {
      flat = JSON.parse(line.toString('utf8', start, end));
    } catch (err) {
      throw new SnapshotIntegrityError('not JSON', { cause: err });
    }
    if (!Array.isArray(flat) || flat.length === 0 || flat.length % 2 !== 0) {
      throw new SnapshotIntegrityError('not a list of id, type pairs');
    }
    if (!flat.every((item) => typeof item === 'string' && item.length > 0)) {
      throw new SnapshotIntegrityError('holds a bad id or type');
    }
    this.addPerson(flat as string[]);
    return flat.length / 2;
  }

  /** Adds a person given as `id, typeCode, id, typeCode, ...` strings. */
  addPerson(flat: readonly string[]): void {
    this.beginPerson();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const id = flat[i] as string;
      const code = Buffer.from(flat[i + 1] as string, 'utf8');
      const type = this.typeOf(code, 0, code.length);
      if (type < 0) continue;
      if (!isPrintableAscii(id)) {
        this.stats.unreachableIds++;
        continue;
      }
      const bytes = Buffer.from(id, 'latin1');
      this.addId(bytes, 0, bytes.length, type);
    }
    this.endPerson();
  }

  build(): MappingIndex {
    return new CompactMappingIndex(
      // The used bytes only: copied when the buffer has much spare room (grown by doubling),
      // kept as a view when it was sized from the manifest (no second copy at the peak).
      tight(this.pool, this.poolLength),
      tight(this.offsets, this.ids + 1),
      this.personStarts.slice(0, this.persons + 1),
      this.hashes.subarray(0, this.ids),
      this.codes,
      this.layouts,
      this.stats,
    );
  }

  /** Parses the common case in place; -1 when the line needs the general parser. */
  private tryAddLine(b: Buffer, start: number, end: number): number {
    if (b[start] !== OPEN || b[end - 1] !== CLOSE) return -1;
    // Find every string first, so that a fallback never adds a person twice.
    let p = start + 1;
    let items = 0;
    while (p < end - 1) {
      if (b[p] !== QUOTE) return -1;
      const s = ++p;
      for (;;) {
        const c = b[p] as number;
        if (c === QUOTE) break;
        if (c === BACKSLASH || c < 0x20 || c > 0x7e || p >= end) return -1;
        p++;
      }
      if (p === s) return -1;
      if (items * 2 + 2 > this.marks.length) this.marks = grow(this.marks);
      this.marks[items * 2] = s;
      this.marks[items * 2 + 1] = p;
      items++;
      p++;
      if (b[p] === COMMA) p++;
      else if (p !== end - 1) return -1;
    }
    if (items === 0 || items % 2 !== 0) return -1;

    this.beginPerson();
    const marks = this.marks;
    for (let item = 0; item < items; item += 2) {
      const type = this.typeOf(b, marks[item * 2 + 2] as number, marks[item * 2 + 3] as number);
      if (type >= 0) this.addId(b, marks[item * 2] as number, marks[item * 2 + 1] as number, type);
    }
    this.endPerson();
    return items / 2;
  }

  private typeOf(b: Uint8Array, start: number, end: number): number {
    const length = end - start;
    for (let t = 0; t < this.codeBytes.length; t++) {
      const code = this.codeBytes[t] as Buffer;
      if (code.length !== length) continue;
      let k = 0;
      while (k < length && code[k] === b[start + k]) k++;
      if (k === length) return t;
    }
    this.stats.unknownTypeIds++;
    return -1;
  }

  /**
   * Packs and adds the printable-ASCII id on `b[start, end)`: in one pass it hashes the id and
   * writes its digits as nibbles, then falls back to plain bytes if it was not hex after all.
   */
  private addId(b: Uint8Array, start: number, end: number, type: number): void {
    const length = end - start;
    if (length > MAX_ID_CHARS) {
      this.stats.unreachableIds++;
      return;
    }
    this.ensureSpace(2 + length);
    const pool = this.pool;
    const at0 = this.poolLength;
    let at = at0 + 2; // header and layout bytes come last
    let lower = true;
    let upper = true;
    let groups = 0;
    let run = 0;
    let high = -1;
    // The type is part of the key: the same text under two id types is two ids.
    let h = Math.imul(FNV_OFFSET ^ type, FNV_PRIME);
    for (let k = start; k < end; k++) {
      const c = b[k] as number;
      h = Math.imul(h ^ c, FNV_PRIME);
      if (c === DASH) {
        if (run === 0 || groups >= MAX_GROUPS - 1) lower = upper = false;
        else this.groups[groups++] = run;
        run = 0;
        continue;
      }
      if (c === 0x20) {
        this.stats.unreachableIds++;
        return;
      }
      run++;
      let nibble: number;
      if (c >= 0x30 && c <= 0x39) nibble = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) {
        upper = false;
        nibble = c - 0x57;
      } else if (c >= 0x41 && c <= 0x46) {
        lower = false;
        nibble = c - 0x37;
      } else {
        lower = upper = false;
        nibble = 0;
      }
      if (high < 0) high = nibble;
      else {
        pool[at++] = (high << 4) | nibble;
        high = -1;
      }
    }
    if (run === 0) lower = upper = false;
    else this.groups[groups++] = run;

    if (lower || upper) {
      if (high >= 0) pool[at++] = high << 4;
      const odd = (length - (groups - 1)) & 1;
      pool[at0] = ((lower ? HEX_LOWER : HEX_UPPER) << 6) | (odd ? ODD : 0) | type;
      pool[at0 + 1] = this.layoutOf(groups);
    } else {
      at = at0;
      pool[at++] = type;
      for (let k = start; k < end; k++) pool[at++] = b[k] as number;
    }
    this.offsets[this.ids] = at0;
    this.hashes[this.ids] = h >>> 0;
    this.ids++;
    this.poolLength = at;
    this.offsets[this.ids] = at;
  }

  private layoutOf(groups: number): number {
    // A handful of layouts in practice (one or two per id type): a scan beats building keys.
    for (let index = 0; index < this.layouts.length; index++) {
      const layout = this.layouts[index] as number[];
      if (layout.length !== groups) continue;
      let g = 0;
      while (g < groups && layout[g] === this.groups[g]) g++;
      if (g === groups) return index;
    }
    // More than 255 layouts would be odd data; refuse rather than mix them up.
    if (this.layouts.length >= 255)
      throw new SnapshotIntegrityError('too many distinct id layouts');
    this.layouts.push(Array.from(this.groups.subarray(0, groups)));
    return this.layouts.length - 1;
  }

  private beginPerson(): void {
    if (this.persons + 2 > this.personStarts.length) this.personStarts = grow(this.personStarts);
    this.personStarts[this.persons] = this.ids;
  }

  private endPerson(): void {
    // A person whose ids were all skipped leaves no trace.
    if ((this.personStarts[this.persons] as number) < this.ids) this.persons++;
    this.personStarts[this.persons] = this.ids;
  }

  private ensureSpace(bytes: number): void {
    if (this.maxBytes > 0 && this.poolLength + bytes > this.pool.length) {
      // Growing would double the pool: refuse once the index could no longer fit the budget.
      const projected = this.poolLength + this.ids * (ID_OVERHEAD_BYTES + 1 / 8);
      if (projected > this.maxBytes) {
        throw new SnapshotTooLargeError(
          `the mapping outgrew MAPPING_MAX_BYTES (${this.maxBytes}) while loading ` +
            `(${this.ids} ids read so far)`,
        );
      }
    }
    if (this.poolLength + bytes > this.pool.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.pool.length * 2, this.poolLength + bytes));
      this.pool.copy(bigger, 0, 0, this.poolLength);
      this.pool = bigger;
    }
    if (this.ids + 2 > this.offsets.length) {
      this.offsets = grow(this.offsets);
      this.hashes = grow(this.hashes);
    }
  }
}

/** The built index: a lookup hashes the requested string and compares it with stored bytes. */
class CompactMappingIndex implements MappingIndex {
  readonly idCount: number;
  readonly personCount: number;
  private readonly slots: Uint32Array;
  /** Bit i set: id i repeats an earlier one, which keeps it. */
  private readonly duplicates: Uint8Array;
  private readonly typeIndexes: ReadonlyMap<string, number>;

  constructor(
    private readonly pool: Buffer,
    private readonly offsets: Uint32Array,
    private readonly personStarts: Uint32Array,
    hashes: Uint32Array,
    private readonly codes: readonly string[],
    private readonly layouts: readonly Layout[],
    stats: CompactBuildStats,
  ) {
    const n = offsets.length - 1;
    this.typeIndexes = new Map(codes.map((code, index) => [code, index]));
    this.slots = new Uint32Array(Math.max(1024, Math.ceil(n / LOAD_FACTOR)));
    this.duplicates = new Uint8Array((n >> 3) + 1);
    const capacity = this.slots.length;
    let duplicates = 0;
    for (let i = 0; i < n; i++) {
      let slot = (hashes[i] as number) % capacity;
      for (;;) {
        const held = this.slots[slot] as number;
        if (held === 0) {
          this.slots[slot] = i + 1;
          break;
        }
        if (this.sameId(held - 1, i)) {
          (this.duplicates[i >> 3] as number) |= 1 << (i & 7);
          duplicates++;
          break;
        }
        slot = slot + 1 === capacity ? 0 : slot + 1;
      }
    }
    stats.duplicateIds = duplicates;
    this.idCount = n - duplicates;
    this.personCount = personStarts.length - 1;
  }

  lookup(id: string, typeCode: string, maxLinked: number): MappingHit | undefined {
    const type = this.typeIndexes.get(typeCode);
    if (type === undefined) return undefined;
    const i = this.find(id, type);
    if (i < 0) return undefined;
    const person = this.personOf(i);
    const from = this.personStarts[person] as number;
    const to = this.personStarts[person + 1] as number;
    const linked: LinkedId[] = [];
    let total = 0;
    for (let j = from; j < to; j++) {
      if (j === i || this.isDuplicate(j)) continue;
      total++;
      if (linked.length < maxLinked)
        linked.push({ id: this.idAt(j), typeCode: this.typeCodeAt(j) });
    }
    return { typeCode: this.typeCodeAt(i), linked, linkedTotal: total };
  }

  /** Bytes the index holds, for benchmarks. */
  get byteSize(): number {
    return (
      this.pool.byteLength +
      this.offsets.byteLength +
      this.personStarts.byteLength +
      this.slots.byteLength +
      this.duplicates.byteLength
    );
  }

  private find(id: string, type: number): number {
    const length = id.length;
    if (length === 0 || length > MAX_ID_CHARS) return -1;
    let h = Math.imul(FNV_OFFSET ^ type, FNV_PRIME);
    for (let k = 0; k < length; k++) {
      const c = id.charCodeAt(k);
      if (c > 0x7e) return -1; // never stored, and would not hash like its bytes
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    const capacity = this.slots.length;
    let slot = (h >>> 0) % capacity;
    for (;;) {
      const held = this.slots[slot] as number;
      if (held === 0) return -1;
      if (this.typeIndexAt(held - 1) === type && this.isIdAt(held - 1, id)) return held - 1;
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
  }

  /** The id stored at i, as a string (unpacked into a scratch buffer, then one string). */
  private idAt(i: number): string {
    const start = this.offsets[i] as number;
    const end = this.offsets[i + 1] as number;
    const header = this.pool[start] as number;
    const kind = header >> 6;
    if (kind === RAW) return this.pool.toString('latin1', start + 1, end);
    const digitsOf = kind === HEX_LOWER ? LOWER_DIGITS : UPPER_DIGITS;
    const layout = this.layouts[this.pool[start + 1] as number] as Layout;
    const text = ID_SCRATCH;
    let n = 0;
    let at = start + 2;
    let high = true;
    for (let g = 0; g < layout.length; g++) {
      if (g > 0) text[n++] = DASH;
      for (let d = layout[g] as number; d > 0; d--) {
        const byte = this.pool[at] as number;
        text[n++] = digitsOf[high ? byte >> 4 : byte & 15] as number;
        if (!high) at++;
        high = !high;
      }
    }
    return text.toString('latin1', 0, n);
  }

  /** Whether the id stored at i is `id`, compared in place (no string is built on a probe). */
  private isIdAt(i: number, id: string): boolean {
    const start = this.offsets[i] as number;
    const end = this.offsets[i + 1] as number;
    const pool = this.pool;
    const header = pool[start] as number;
    const kind = header >> 6;
    if (kind === RAW) {
      if (end - start - 1 !== id.length) return false;
      for (let k = 0; k < id.length; k++) {
        if (pool[start + 1 + k] !== id.charCodeAt(k)) return false;
      }
      return true;
    }
    const digitsOf = kind === HEX_LOWER ? LOWER_DIGITS : UPPER_DIGITS;
    const layout = this.layouts[pool[start + 1] as number] as Layout;
    let k = 0;
    let at = start + 2;
    let high = true;
    for (let g = 0; g < layout.length; g++) {
      if (g > 0 && id.charCodeAt(k++) !== DASH) return false;
      for (let d = layout[g] as number; d > 0; d--) {
        const byte = pool[at] as number;
        if (id.charCodeAt(k++) !== digitsOf[high ? byte >> 4 : byte & 15]) return false;
        if (!high) at++;
        high = !high;
      }
    }
    return k === id.length;
  }

  private typeIndexAt(i: number): number {
    return (this.pool[this.offsets[i] as number] as number) & TYPE_MASK;
  }

  private typeCodeAt(i: number): string {
    return this.codes[this.typeIndexAt(i)] as string;
  }

  private isDuplicate(i: number): boolean {
    return (((this.duplicates[i >> 3] as number) >> (i & 7)) & 1) === 1;
  }

  private sameId(a: number, b: number): boolean {
    const aStart = this.offsets[a] as number;
    const bStart = this.offsets[b] as number;
    const length = (this.offsets[a + 1] as number) - aStart;
    if ((this.offsets[b + 1] as number) - bStart !== length) return false;
    // Same text under the same type packs the same way, header byte included.
    for (let k = 0; k < length; k++)
      if (this.pool[aStart + k] !== this.pool[bStart + k]) return false;
    return true;
  }

  private personOf(i: number): number {
    // The last person whose first id is <= i.
    let lo = 0;
    let hi = this.personStarts.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.personStarts[mid] as number) <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

function isPrintableAscii(id: string): boolean {
  for (let k = 0; k < id.length; k++) {
    const c = id.charCodeAt(k);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** The first `length` items, as a view when little is wasted, else as a copy. */
function tight<T extends Buffer | Uint32Array>(array: T, length: number): T {
  const spare = array.length - length;
  if (spare <= length / 8) return array.subarray(0, length) as T;
  if (Buffer.isBuffer(array)) return Buffer.from(array.subarray(0, length)) as T;
  return array.slice(0, length) as T;
}

function grow<T extends Uint32Array | Int32Array>(array: T): T {
  const bigger = new (array.constructor as new (n: number) => T)(array.length * 2);
  bigger.set(array);
  return bigger;
}
