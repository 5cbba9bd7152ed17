/**
 * A segments bin in compact form, as the embedded store keeps it: each segment's id (a small
 * integer) and expiry (epoch seconds; 0 or less: never) side by side in a slice of a shared
 * Float64Array, in the record's order. An answer walks one contiguous run of memory: the object
 * a JSON line or the Aerospike client gives (integer keys, expiries beyond 2^31 as boxed
 * numbers) costs a cache miss or more per segment on a store of many records, and V8 sorts its
 * keys on every walk.
 */
export class SegmentTable {
  private constructor(
    /** `[id, expiry, id, expiry, ...]` for this record from `start` (inclusive) to `end`. */
    private readonly cells: Float64Array,
    private readonly start: number,
    private readonly end: number,
  ) {}

  /**
   * The compact form of a segments bin (a list of ids, or an object of id -> expiry), or
   * undefined when an id is not a canonical integer of at most 30 bits (V8's small integers)
   * or an expiry is not a number: the bin is then kept as it is, which answers the same.
   */
  static from(value: unknown, slab: SegmentSlab = new SegmentSlab()): SegmentTable | undefined {
    if (Array.isArray(value)) {
      const ids: number[] = [];
      for (const item of value) {
        const id = smallId(item);
        if (id === undefined) return undefined;
        ids.push(id, 0);
      }
      return SegmentTable.filled(ids, slab);
    }
    if (
      value === null ||
      typeof value !== 'object' ||
      Object.getPrototypeOf(value) !== Object.prototype
    ) {
      return undefined;
    }
    const map = value as Record<string, unknown>;
    const pairs: number[] = [];
    for (const key of Object.keys(map)) {
      const id = smallId(key);
      const expiry = map[key];
      if (id === undefined || typeof expiry !== 'number') return undefined;
      pairs.push(id, expiry);
    }
    return SegmentTable.filled(pairs, slab);
  }

  /** A table over the `[id, expiry, ...]` pairs of `cells` from `start` to `end`, in order. */
  static ofCells(cells: Float64Array, start: number, end: number): SegmentTable {
    return new SegmentTable(cells, start, end);
  }

  private static filled(pairs: readonly number[], slab: SegmentSlab): SegmentTable {
    const { cells, start } = slab.take(pairs.length);
    cells.set(pairs, start);
    return new SegmentTable(cells, start, start + pairs.length);
  }

  /** Calls `visitor.segment` with each segment id whose expiry is not past at `nowSecs`, in order. */
  forEachLive(nowSecs: number, visitor: { segment(id: number): void }): void {
    const cells = this.cells;
    for (let i = this.start; i < this.end; i += 2) {
      const expiry = cells[i + 1] as number;
      // `| 0`: the id is a small integer, handed on untagged (no boxed number per segment).
      if (!(expiry > 0 && expiry <= nowSecs)) visitor.segment((cells[i] as number) | 0);
    }
  }
}

/** Large shared arrays that segment tables are carved from: no array object per record. */
export class SegmentSlab {
  private cells = new Float64Array(0);
  private used = 0;

  constructor(private readonly cellsPerSlab = 1 << 16) {}

  take(count: number): { cells: Float64Array; start: number } {
    if (count > this.cellsPerSlab) return { cells: new Float64Array(count), start: 0 };
    if (this.used + count > this.cells.length) {
      this.cells = new Float64Array(this.cellsPerSlab);
      this.used = 0;
    }
    const start = this.used;
    this.used += count;
    return { cells: this.cells, start };
  }
}

const SMALL_ID_LIMIT = 2 ** 30;

/** The id as a number when it is a canonical integer within V8's small-integer range. */
function smallId(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < -SMALL_ID_LIMIT || n >= SMALL_ID_LIMIT) {
    return undefined;
  }
  if (typeof value === 'string' && String(n) !== value) return undefined;
  return n;
}
