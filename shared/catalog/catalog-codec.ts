import { z } from 'zod';
import { SnapshotIntegrityError } from '../errors.js';
import type { Decoded, RowCounter, SnapshotCodec } from '../snapshots/snapshot-codec.js';
import { readAllText } from '../text-lines.js';
import { Catalog } from './catalog.js';
import { type Segment, segmentSchema } from './segment.js';

const CATALOG_SCHEMA_VERSION = 1;

const catalogFileSchema = z.object({
  schemaVersion: z.literal(CATALOG_SCHEMA_VERSION),
  segments: z.array(segmentSchema),
});

/**
 * The catalog snapshot: one gzip JSON document `{"schemaVersion":1,"segments":[...]}`,
 * written one segment per line so that the job can stream it.
 */
export const catalogCodec: SnapshotCodec<Segment, Catalog> = {
  kind: 'catalog',
  extension: 'json.gz',

  async *encode(
    segments: AsyncIterable<Segment> | Iterable<Segment>,
    counter: RowCounter,
  ): AsyncIterable<string> {
    yield `{"schemaVersion":${CATALOG_SCHEMA_VERSION},"segments":[`;
    for await (const segment of segments) {
      yield `${counter.rows === 0 ? '\n' : ',\n'}${JSON.stringify(segment)}`;
      counter.rows++;
    }
    yield '\n]}\n';
  },

  async decode(text: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Decoded<Catalog>> {
    let json: unknown;
    try {
      json = JSON.parse(await readAllText(text));
    } catch (err) {
      if (err instanceof SyntaxError) {
        throw new SnapshotIntegrityError('catalog snapshot is not valid JSON', { cause: err });
      }
      throw err;
    }
    const parsed = catalogFileSchema.safeParse(json);
    if (!parsed.success) {
      throw new SnapshotIntegrityError(
        `catalog snapshot is invalid: ${z.prettifyError(parsed.error)}`,
      );
    }
    return { value: new Catalog(parsed.data.segments), rows: parsed.data.segments.length };
  },
};
