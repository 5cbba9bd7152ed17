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

/** The segments of a catalog encoded for one field selection: looked up by id as records hold it. */
export interface CatalogView {
  find(id: string | number): RenderedSegment | undefined;
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
    const byText = new Map<string, RenderedSegment>();
    const byNumber = new Map<number, RenderedSegment>();
    for (const segment of this.segments) {
      const json = JSON.stringify(fields ? pick(segment, fields) : segment);
      const listed = Buffer.from(`,${json}`);
      const rendered = {
        bytes: listed.subarray(1),
        listed,
        type: typeof segment.type === 'string' ? segment.type : undefined,
      };
      byText.set(segment.id, rendered);
      const n = Number(segment.id);
      if (Number.isSafeInteger(n) && String(n) === segment.id) byNumber.set(n, rendered);
    }
    return {
      find: (id) => (typeof id === 'number' ? byNumber.get(id) : byText.get(id)),
    };
  }
}

function pick(segment: Segment, fields: ReadonlySet<string>): Record<string, unknown> {
  // Object.fromEntries defines own properties: a field named __proto__ stays plain data.
  return Object.fromEntries(Object.entries(segment).filter(([name]) => fields.has(name)));
}
