import type { Segment } from './segment.js';

/** Segment ids split into those the catalog knows (as ready JSON bytes) and those it does not. */
export interface ResolvedSegments {
  /** Each known segment's JSON; every one after the first already starts with a comma. */
  readonly json: Buffer[];
  readonly unknownIds: string[];
}

/** A segment's JSON, alone and with a leading comma, ready to be pasted into an answer. */
export interface RenderedSegment {
  readonly alone: Buffer;
  readonly afterComma: Buffer;
}

/**
 * The segment catalog in memory: id -> metadata, each segment's JSON encoded once at load so
 * that a request joins bytes instead of re-serialising metadata. Ids are found both as text and,
 * when they are integers, as numbers (profile records hold either), so no id is converted per
 * request.
 */
export class Catalog {
  private readonly byText = new Map<string, RenderedSegment>();
  private readonly byNumber = new Map<number, RenderedSegment>();
  readonly duplicates: number;

  constructor(segments: Iterable<Segment>) {
    let duplicates = 0;
    for (const segment of segments) {
      if (this.byText.has(segment.id)) {
        duplicates++; // the first definition wins, as it does in the job that wrote the snapshot
        continue;
      }
      const json = JSON.stringify(segment);
      const rendered = { alone: Buffer.from(json), afterComma: Buffer.from(`,${json}`) };
      this.byText.set(segment.id, rendered);
      const n = Number(segment.id);
      if (Number.isSafeInteger(n) && String(n) === segment.id) this.byNumber.set(n, rendered);
    }
    this.duplicates = duplicates;
  }

  get size(): number {
    return this.byText.size;
  }

  /** A segment's encoded JSON, looked up by the id as a record holds it. */
  find(id: string | number): RenderedSegment | undefined {
    return typeof id === 'number' ? this.byNumber.get(id) : this.byText.get(id);
  }

  /** The metadata JSON of each known id, in the given order, and the ids it does not know. */
  resolve(ids: readonly (string | number)[]): ResolvedSegments {
    const json: Buffer[] = [];
    const unknownIds: string[] = [];
    for (const id of ids) {
      const hit = this.find(id);
      if (hit === undefined) unknownIds.push(String(id));
      else json.push(json.length === 0 ? hit.alone : hit.afterComma);
    }
    return { json, unknownIds };
  }
}
