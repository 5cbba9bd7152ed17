import type { Segment } from './segment.js';

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

  constructor(segments: Iterable<Segment>) {
    for (const segment of segments) {
      // The first definition wins, as it does in the job that wrote the snapshot.
      if (this.byText.has(segment.id)) continue;
      const json = JSON.stringify(segment);
      const rendered = { alone: Buffer.from(json), afterComma: Buffer.from(`,${json}`) };
      this.byText.set(segment.id, rendered);
      const n = Number(segment.id);
      if (Number.isSafeInteger(n) && String(n) === segment.id) this.byNumber.set(n, rendered);
    }
  }

  get size(): number {
    return this.byText.size;
  }

  /** A segment's encoded JSON, looked up by the id as a record holds it. */
  find(id: string | number): RenderedSegment | undefined {
    return typeof id === 'number' ? this.byNumber.get(id) : this.byText.get(id);
  }
}
