import type { ByteWriter } from '../byte-writer.js';
import type { Segment } from './segment.js';

/** One segment's JSON as the full view writes it, found by id (tests and tools). */
export interface RenderedSegment {
  /** The segment's JSON object (every field) as UTF-8. */
  readonly bytes: Buffer;
  /** Its type, for `segmentTypes` filters (undefined when the catalog gives none). */
  readonly type: string | undefined;
}

/**
 * The catalog as an answer copies it in: each segment found by position (see SegmentPositions),
 * then written, every field or a selection of them. Writing costs the segment's own bytes, never
 * anything in proportion to the catalog.
 */
export interface CatalogView {
  /** The position of a segment, looked up by the id as a record holds it; -1 when unknown. */
  positionOf(id: string | number): number;
  /** Each segment's type, by position (undefined when the catalog gives none). */
  readonly types: readonly (string | undefined)[];
  /** Appends the segment at `at` as a JSON object, after a comma unless it is the list's first. */
  write(out: ByteWriter, at: number, first: boolean): void;
}

/** Integer ids below this are found through a table indexed by the id itself. */
const DIRECT_IDS_MAX = 1 << 22;

/**
 * Segment id -> position in the catalog, shared by every field selection. Integer ids, as
 * records usually hold them, index a typed array directly when the catalog's integer ids are
 * dense enough (at most 16 bytes of table per segment, 16 MiB in all): no hashing, and one
 * contiguous table where a Map costs a cache miss or two per segment of an answer. Other ids go
 * through maps, text and number alike, so no id is converted per request.
 */
class SegmentPositions {
  private readonly byText = new Map<string, number>();
  private readonly byNumber = new Map<number, number>();
  private readonly direct: Int32Array;

  constructor(ids: readonly string[]) {
    const integers = ids.map((id) => {
      const n = Number(id);
      return Number.isSafeInteger(n) && String(n) === id ? n : undefined;
    });
    let top = -1;
    for (const n of integers) if (n !== undefined && n < DIRECT_IDS_MAX && n > top) top = n;
    const dense = top >= 0 && top < Math.max(65_536, ids.length * 4);
    this.direct = new Int32Array(dense ? top + 1 : 0).fill(-1);
    ids.forEach((id, at) => {
      this.byText.set(id, at);
      const n = integers[at];
      if (n === undefined) return;
      if (n >= 0 && n < this.direct.length) this.direct[n] = at;
      else this.byNumber.set(n, at);
    });
  }

  of(id: string | number): number {
    if (typeof id !== 'number') return this.byText.get(id) ?? -1;
    // A typed array answers undefined past its end, below zero and for fractions.
    return this.direct[id] ?? this.byNumber.get(id) ?? -1;
  }
}

const OPEN = 0x7b;
const CLOSE = 0x7d;
const COMMA = 0x2c;

/**
 * Every segment's JSON encoded once, with where each of its members lies in those bytes. The
 * full view copies a segment's bytes whole; a field selection copies the selected members'
 * byte ranges: the cost of any selection follows the segments of the answer, and no selection
 * is ever encoded or cached per catalog (callers choose selections; the catalog is large).
 */
class EncodedSegments {
  /** Each segment's JSON after a comma, by position. */
  readonly listed: Buffer[] = [];
  /** The same without the comma (a view of the same bytes), by position. */
  readonly bytes: Buffer[] = [];
  /** Segment `at` has the members `memberStart[at]` to `memberStart[at + 1]` (exclusive). */
  readonly memberStart: Uint32Array;
  /** Per member: the field's index in Catalog.fieldNames, and its bytes in `bytes[at]`. */
  readonly memberField: Uint32Array;
  readonly memberFrom: Uint32Array;
  readonly memberTo: Uint32Array;

  constructor(segments: readonly Segment[], fieldIndex: ReadonlyMap<string, number>) {
    let members = 0;
    for (const segment of segments) members += Object.keys(segment).length;
    this.memberStart = new Uint32Array(segments.length + 1);
    this.memberField = new Uint32Array(members);
    this.memberFrom = new Uint32Array(members);
    this.memberTo = new Uint32Array(members);
    let m = 0;
    segments.forEach((segment, at) => {
      this.memberStart[at] = m;
      // JSON.stringify's own rules, member by member: its key order (Object.keys), and members
      // whose value has no JSON form left out. A property test holds this to JSON.stringify.
      let json = '';
      let offset = 1;
      for (const name of Object.keys(segment)) {
        const value = JSON.stringify(segment[name]);
        if (value === undefined) continue;
        const member = `${JSON.stringify(name)}:${value}`;
        json += json === '' ? member : `,${member}`;
        this.memberField[m] = fieldIndex.get(name) as number;
        this.memberFrom[m] = offset;
        offset += Buffer.byteLength(member);
        this.memberTo[m++] = offset;
        offset += 1;
      }
      const withComma = Buffer.from(`,{${json}}`);
      this.listed.push(withComma);
      this.bytes.push(withComma.subarray(1));
    });
    this.memberStart[segments.length] = m;
  }
}

/** Every field of every segment: the pre-encoded bytes, copied whole. */
class FullView implements CatalogView {
  constructor(
    private readonly positions: SegmentPositions,
    private readonly encoded: EncodedSegments,
    readonly types: readonly (string | undefined)[],
  ) {}

  positionOf(id: string | number): number {
    return this.positions.of(id);
  }

  write(out: ByteWriter, at: number, first: boolean): void {
    out.bytes((first ? this.encoded.bytes[at] : this.encoded.listed[at]) as Buffer);
  }
}

/** Some fields of every segment: each selected member's bytes copied from the full encoding. */
class FieldSelectionView implements CatalogView {
  constructor(
    private readonly positions: SegmentPositions,
    private readonly encoded: EncodedSegments,
    readonly types: readonly (string | undefined)[],
    /** 1 at the index (in Catalog.fieldNames) of each selected field. */
    private readonly wanted: Uint8Array,
  ) {}

  positionOf(id: string | number): number {
    return this.positions.of(id);
  }

  write(out: ByteWriter, at: number, first: boolean): void {
    const { memberStart, memberField, memberFrom, memberTo } = this.encoded;
    const source = this.encoded.bytes[at] as Buffer;
    if (!first) out.byte(COMMA);
    out.byte(OPEN);
    let written = false;
    const end = memberStart[at + 1] as number;
    for (let m = memberStart[at] as number; m < end; m++) {
      if (this.wanted[memberField[m] as number] === 0) continue;
      if (written) out.byte(COMMA);
      out.range(source, memberFrom[m] as number, memberTo[m] as number);
      written = true;
    }
    out.byte(CLOSE);
  }
}

/**
 * The segment catalog in memory: id -> metadata, each segment's JSON encoded once, so that a
 * request copies pre-encoded bytes instead of serialising metadata field by field; a field
 * selection copies the selected members of those bytes. Ids are found both as text and, when
 * they are integers, as numbers (profile records hold either), so no id is converted per request.
 */
export class Catalog {
  /** Every field name some segment has, in first-seen order (`id` first). */
  readonly fieldNames: readonly string[];
  private readonly fieldIndex: ReadonlyMap<string, number>;
  private readonly encoded: EncodedSegments;
  private readonly positions: SegmentPositions;
  /** Each segment's type, by position: the same for every field selection. */
  private readonly types: readonly (string | undefined)[];
  private readonly all: FullView;

  constructor(segments: Iterable<Segment>) {
    const kept: Segment[] = [];
    const seen = new Set<string>();
    const names = new Set<string>(['id']);
    for (const segment of segments) {
      // The first definition wins, as it does in the job that wrote the snapshot.
      if (seen.has(segment.id)) continue;
      seen.add(segment.id);
      kept.push(segment);
      for (const name of Object.keys(segment)) names.add(name);
    }
    this.fieldNames = [...names];
    this.fieldIndex = new Map(this.fieldNames.map((name, i) => [name, i]));
    this.positions = new SegmentPositions(kept.map((segment) => segment.id));
    this.types = kept.map((segment) =>
      typeof segment.type === 'string' ? segment.type : undefined,
    );
    this.encoded = new EncodedSegments(kept, this.fieldIndex);
    this.all = new FullView(this.positions, this.encoded, this.types);
  }

  get size(): number {
    return this.encoded.bytes.length;
  }

  /** Whether some segment has the field `name`. */
  hasField(name: string): boolean {
    return this.fieldIndex.has(name);
  }

  /** A segment's full JSON, looked up by the id as a record holds it. */
  find(id: string | number): RenderedSegment | undefined {
    const at = this.positions.of(id);
    if (at < 0) return undefined;
    return { bytes: this.encoded.bytes[at] as Buffer, type: this.types[at] };
  }

  /**
   * The catalog with only `fields` (undefined: every field), each segment's members in its own
   * order as the full view writes them. Costs the number of names given, whatever the catalog's
   * size; nothing is kept. Unknown names are ignored: callers refuse them first (hasField).
   */
  view(fields: readonly string[] | undefined): CatalogView {
    if (fields === undefined) return this.all;
    const wanted = new Uint8Array(this.fieldNames.length);
    let selected = 0;
    for (const name of fields) {
      const at = this.fieldIndex.get(name);
      if (at !== undefined && wanted[at] === 0) {
        wanted[at] = 1;
        selected++;
      }
    }
    // Every field: the very bytes of the full view.
    if (selected === this.fieldNames.length) return this.all;
    return new FieldSelectionView(this.positions, this.encoded, this.types, wanted);
  }
}
