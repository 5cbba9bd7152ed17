import { SnapshotIntegrityError } from '../errors.js';
import type { IdTypeRegistry } from '../id-types.js';
import type { LinkedId, MappingHit, MappingIndex } from './mapping-index.js';

/** Longest id kept; longer ones cannot be requested (MAX_ID_LENGTH is at most 4096). */
const MAX_ID_BYTES = 4096;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN = 0x5b;
const CLOSE = 0x5d;

/** What a build skipped without rejecting the snapshot. */
export interface CompactBuildStats {
  /** Ids whose type code the registry does not know. */
  unknownTypeIds: number;
  /** Ids no request can ask for (not printable ASCII, or too long). */
  unreachableIds: number;
  /** Ids seen before in another person: the first person keeps them. */
  duplicateIds: number;
}

/**
 * Builds the identity mapping without one JS object per id: every id's bytes in one pool, the
 * ids of a person stored next to each other, and an open-addressing hash table of id numbers in
 * a typed array. A snapshot line is parsed straight from its bytes; lines with JSON escapes take
 * the slower JSON.parse path. About 15 bytes per id plus the id itself.
 */
export class CompactMappingIndexBuilder {
  readonly stats: CompactBuildStats = { unknownTypeIds: 0, unreachableIds: 0, duplicateIds: 0 };
  private pool = Buffer.allocUnsafe(1 << 20);
  private poolLength = 0;
  private offsets = new Uint32Array(1 << 16);
  private hashes = new Uint32Array(1 << 16);
  private types = new Uint8Array(1 << 16);
  private personStarts = new Uint32Array(1 << 14);
  private ids = 0;
  private persons = 0;
  private readonly codes: string[];
  private readonly codeIndex: Map<string, number>;

  constructor(registry: IdTypeRegistry) {
    this.codes = registry.all.map((t) => t.code);
    this.codeIndex = new Map(this.codes.map((c, i) => [c, i]));
    if (this.codes.length > 255) throw new Error('at most 255 id types');
  }

  /**
   * Adds the person on `line[start, end)` (`["id","code",...]`) and returns how many ids it
   * listed (skipped ones included, so that rows can be checked against the manifest).
   */
  addLine(line: Buffer, start: number, end: number): number {
    const fast = this.tryAddLine(line, start, end);
    if (fast >= 0) return fast;
    const text = line.toString('utf8', start, end);
    let flat: unknown;
    try {
      flat = JSON.parse(text);
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
      const type = this.typeOf(flat[i + 1] as string);
      if (type < 0) continue;
      if (!isReachable(id)) {
        this.stats.unreachableIds++;
        continue;
      }
      this.ensureId(id.length);
      const start = this.poolLength;
      let h = FNV_OFFSET;
      for (let k = 0; k < id.length; k++) {
        const c = id.charCodeAt(k);
        this.pool[start + k] = c;
        h = Math.imul(h ^ c, FNV_PRIME);
      }
      this.pushId(start + id.length, h >>> 0, type);
    }
    this.endPerson();
  }

  build(): MappingIndex {
    return new CompactMappingIndex(
      this.pool.subarray(0, this.poolLength),
      this.offsets.slice(0, this.ids + 1),
      this.types.slice(0, this.ids),
      this.personStarts.slice(0, this.persons + 1),
      this.hashes.subarray(0, this.ids),
      this.codes,
      this.stats,
    );
  }

  /** Parses the common case in place; -1 when the line needs the general parser. */
  private tryAddLine(b: Buffer, start: number, end: number): number {
    if (b[start] !== OPEN || b[end - 1] !== CLOSE) return -1;
    // Validate the whole line before adding anything, so a fallback never doubles a person.
    let p = start + 1;
    let items = 0;
    while (p < end - 1) {
      if (b[p] !== QUOTE) return -1;
      p++;
      const s = p;
      while (p < end && b[p] !== QUOTE) {
        const c = b[p] as number;
        if (c === BACKSLASH || c < 0x20 || c > 0x7e) return -1;
        p++;
      }
      if (p >= end || p === s) return -1;
      p++;
      items++;
      if (b[p] === COMMA) p++;
      else if (p !== end - 1) return -1;
    }
    if (items === 0 || items % 2 !== 0) return -1;

    this.beginPerson();
    p = start + 1;
    for (let item = 0; item < items; item += 2) {
      const idStart = p + 1;
      let idEnd = idStart;
      while (b[idEnd] !== QUOTE) idEnd++;
      const codeStart = idEnd + 3;
      let codeEnd = codeStart;
      while (b[codeEnd] !== QUOTE) codeEnd++;
      p = codeEnd + 2;
      const type = this.typeOf(b.toString('latin1', codeStart, codeEnd));
      if (type < 0) continue;
      const length = idEnd - idStart;
      if (length > MAX_ID_BYTES || hasSpace(b, idStart, idEnd)) {
        this.stats.unreachableIds++;
        continue;
      }
      this.ensureId(length);
      const at = this.poolLength;
      let h = FNV_OFFSET;
      for (let k = 0; k < length; k++) {
        const c = b[idStart + k] as number;
        this.pool[at + k] = c;
        h = Math.imul(h ^ c, FNV_PRIME);
      }
      this.pushId(at + length, h >>> 0, type);
    }
    this.endPerson();
    return items / 2;
  }

  private typeOf(code: string): number {
    const type = this.codeIndex.get(code);
    if (type === undefined) {
      this.stats.unknownTypeIds++;
      return -1;
    }
    return type;
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

  private ensureId(length: number): void {
    if (this.poolLength + length > this.pool.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.pool.length * 2, this.poolLength + length));
      this.pool.copy(bigger, 0, 0, this.poolLength);
      this.pool = bigger;
    }
    if (this.ids + 2 > this.offsets.length) {
      this.offsets = grow(this.offsets);
      this.hashes = grow(this.hashes);
      this.types = grow(this.types);
    }
  }

  private pushId(end: number, hash: number, type: number): void {
    this.offsets[this.ids] = this.poolLength;
    this.hashes[this.ids] = hash;
    this.types[this.ids] = type;
    this.ids++;
    this.poolLength = end;
    this.offsets[this.ids] = end;
  }
}

/** The built index: lookups hash the requested string and compare bytes, nothing else. */
class CompactMappingIndex implements MappingIndex {
  readonly idCount: number;
  readonly personCount: number;
  private readonly slots: Uint32Array;
  private readonly mask: number;
  /** 1 where an id repeats an earlier one (the earlier person keeps it). */
  private readonly duplicate: Uint8Array;

  constructor(
    private readonly pool: Buffer,
    private readonly offsets: Uint32Array,
    private readonly types: Uint8Array,
    private readonly personStarts: Uint32Array,
    hashes: Uint32Array,
    private readonly codes: readonly string[],
    stats: CompactBuildStats,
  ) {
    const n = types.length;
    let capacity = 1024;
    while (capacity < n * 1.5) capacity *= 2;
    this.slots = new Uint32Array(capacity);
    this.mask = capacity - 1;
    this.duplicate = new Uint8Array(n);
    let duplicates = 0;
    for (let i = 0; i < n; i++) {
      let slot = (hashes[i] as number) & this.mask;
      for (;;) {
        const held = this.slots[slot] as number;
        if (held === 0) {
          this.slots[slot] = i + 1;
          break;
        }
        if (this.sameId(held - 1, i)) {
          this.duplicate[i] = 1;
          duplicates++;
          break;
        }
        slot = (slot + 1) & this.mask;
      }
    }
    stats.duplicateIds = duplicates;
    this.idCount = n - duplicates;
    this.personCount = personStarts.length - 1;
  }

  lookup(id: string, maxLinked: number): MappingHit | undefined {
    const i = this.find(id);
    if (i < 0) return undefined;
    const person = this.personOf(i);
    const from = this.personStarts[person] as number;
    const to = this.personStarts[person + 1] as number;
    const linked: LinkedId[] = [];
    let total = 0;
    for (let j = from; j < to; j++) {
      if (j === i || this.duplicate[j] === 1) continue;
      total++;
      if (linked.length < maxLinked) {
        linked.push({
          id: this.pool.toString(
            'latin1',
            this.offsets[j] as number,
            this.offsets[j + 1] as number,
          ),
          typeCode: this.codes[this.types[j] as number] as string,
        });
      }
    }
    return { typeCode: this.codes[this.types[i] as number] as string, linked, linkedTotal: total };
  }

  /** Bytes the index holds, for benchmarks. */
  get byteSize(): number {
    return (
      this.pool.byteLength +
      this.offsets.byteLength +
      this.types.byteLength +
      this.personStarts.byteLength +
      this.slots.byteLength +
      this.duplicate.byteLength
    );
  }

  private find(id: string): number {
    const length = id.length;
    if (length === 0 || length > MAX_ID_BYTES) return -1;
    let h = FNV_OFFSET;
    for (let k = 0; k < length; k++) {
      const c = id.charCodeAt(k);
      if (c > 0x7e) return -1; // never stored, and would not hash like its bytes
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    let slot = (h >>> 0) & this.mask;
    for (;;) {
      const held = this.slots[slot] as number;
      if (held === 0) return -1;
      const i = held - 1;
      const start = this.offsets[i] as number;
      if ((this.offsets[i + 1] as number) - start === length) {
        let k = 0;
        while (k < length && this.pool[start + k] === id.charCodeAt(k)) k++;
        if (k === length) return i;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  private sameId(a: number, b: number): boolean {
    const aStart = this.offsets[a] as number;
    const bStart = this.offsets[b] as number;
    const length = (this.offsets[a + 1] as number) - aStart;
    if ((this.offsets[b + 1] as number) - bStart !== length) return false;
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

function isReachable(id: string): boolean {
  if (id.length > MAX_ID_BYTES) return false;
  for (let k = 0; k < id.length; k++) {
    const c = id.charCodeAt(k);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

function hasSpace(b: Buffer, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (b[k] === 0x20) return true;
  return false;
}

function grow<T extends Uint32Array | Uint8Array>(array: T): T {
  const bigger = new (array.constructor as new (n: number) => T)(array.length * 2);
  bigger.set(array);
  return bigger;
}
