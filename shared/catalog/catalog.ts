import type { Segment } from './segment.js';

/** Segment ids split into those the catalog knows (as ready JSON) and those it does not. */
export interface ResolvedSegments {
  readonly json: string[];
  readonly unknownIds: string[];
}

/**
 * The segment catalog in memory: id -> metadata, with each segment's JSON rendered once at
 * load so that a request joins by concatenation instead of re-serialising metadata.
 */
export class Catalog {
  private readonly rendered = new Map<string, string>();
  readonly duplicates: number;

  constructor(segments: Iterable<Segment>) {
    let duplicates = 0;
    for (const segment of segments) {
      if (this.rendered.has(segment.id)) {
        duplicates++; // the first definition wins, as it does in the job that wrote the snapshot
        continue;
      }
      this.rendered.set(segment.id, JSON.stringify(segment));
    }
    this.duplicates = duplicates;
  }

  get size(): number {
    return this.rendered.size;
  }

  /** The metadata JSON of each known id, in the given order, and the ids it does not know. */
  resolve(ids: readonly string[]): ResolvedSegments {
    const json: string[] = [];
    const unknownIds: string[] = [];
    for (const id of ids) {
      const hit = this.rendered.get(id);
      if (hit === undefined) unknownIds.push(id);
      else json.push(hit);
    }
    return { json, unknownIds };
  }
}
