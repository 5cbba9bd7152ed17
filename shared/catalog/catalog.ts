import type { Segment } from './segment.js';

/** One segment, encoded once for a selection of its fields, ready to be pasted into an answer. */
export interface RenderedSegment {
  /** The segment's JSON object (only the selected fields) as UTF-8: what an answer copies. */
  readonly bytes: Buffer;
  /** The same after a comma, for every segment of a list but the first: one copy each. */
  readonly listed: Buffer;
  /** Its type, for `segmentTypes` filters (undefined when the catalog gives none). */
  readonly type: string | undefined;
}

/**
 * The segments of a catalog encoded for one field selection, by position (see
 * SegmentPositions): an answer looks each id up once, then reads plain arrays.
 */
export class CatalogView {
  constructor(
    private readonly positions: SegmentPositions,
    /** Each segment's JSON after a comma, by position. */
    readonly listed: readonly Buffer[],
    /** The same without the comma (a view of the same bytes), by position. */
    readonly bytes: readonly Buffer[],
    /** Each segment's type, by position (undefined when the catalog gives none). */
    readonly types: readonly (string | undefined)[],
  ) {}

  /** The position of a segment, looked up by the id as a record holds it; -1 when unknown. */
  positionOf(id: string | number): number {
    return this.positions.of(id);
  }

  /** A segment's encoded forms, found by the id as a record holds it (answers use positionOf). */
  find(id: string | number): RenderedSegment | undefined {
    const at = this.positions.of(id);
    if (at < 0) return undefined;
    return {
      bytes: this.bytes[at] as Buffer,
      listed: this.listed[at] as Buffer,
      type: this.types[at],
    };
  }
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

/** How many distinct field selections keep their encoding (they are few in practice). */
const MAX_VIEWS = 64;

/**
 * The segment catalog in memory: id -> metadata, each segment's JSON encoded once per field
 * selection (the full one at load, others on first use, memoised), so that a request copies
 * pre-encoded bytes instead of serialising metadata field by field. Ids are found both as text
 * and, when they are integers, as numbers (profile records hold either), so no id is converted
 * per request.
 */
export class Catalog {
  /** Every field name some segment has, in first-seen order (`id` first). */
  readonly fieldNames: readonly string[];
  private readonly segments: readonly Segment[];
  private readonly views = new Map<string, CatalogView>();
  private readonly positions: SegmentPositions;
  /** Each segment's type, by position: the same for every field selection. */
  private readonly types: readonly (string | undefined)[];
  private readonly all: CatalogView;

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
    this.segments = kept;
    this.fieldNames = [...names];
    this.positions = new SegmentPositions(kept.map((segment) => segment.id));
    this.types = kept.map((segment) =>
      typeof segment.type === 'string' ? segment.type : undefined,
    );
    this.all = this.build(undefined);
  }

  get size(): number {
    return this.segments.length;
  }

  /** A segment's full JSON, looked up by the id as a record holds it. */
  find(id: string | number): RenderedSegment | undefined {
    return this.all.find(id);
  }

  /**
   * The catalog encoded with only `fields` (in the catalog's own field order; undefined: every
   * field). Unknown names must be refused by the caller (see fieldNames).
   */
  view(fields: readonly string[] | undefined): CatalogView {
    if (fields === undefined) return this.all;
    const wanted = new Set(fields);
    const key = this.fieldNames.filter((f) => wanted.has(f)).join(',');
    let view = this.views.get(key);
    if (!view) {
      if (this.views.size >= MAX_VIEWS) this.views.clear();
      view = this.build(wanted);
      this.views.set(key, view);
    }
    return view;
  }

  private build(fields: ReadonlySet<string> | undefined): CatalogView {
    const listed: Buffer[] = [];
    const bytes: Buffer[] = [];
    for (const segment of this.segments) {
      const json = JSON.stringify(fields ? pick(segment, fields) : segment);
      const withComma = Buffer.from(`,${json}`);
      listed.push(withComma);
      bytes.push(withComma.subarray(1));
    }
    return new CatalogView(this.positions, listed, bytes, this.types);
  }
}

function pick(segment: Segment, fields: ReadonlySet<string>): Record<string, unknown> {
  // Object.fromEntries defines own properties: a field named __proto__ stays plain data.
  return Object.fromEntries(Object.entries(segment).filter(([name]) => fields.has(name)));
}
