import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EmbeddedProfileStore } from '../../shared/profiles/embedded-profile-store.js';
import { SegmentTable } from '../../shared/profiles/segment-table.js';
import { decodeBins } from '../helpers/decode-bins.js';
import { writeProfilesFile } from '../helpers/profiles-file.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();

const NOW = 1_700_000_000;

/** Segment ids as records hold them: canonical integers mostly, and every awkward kind. */
const idText = fc.oneof(
  fc.integer({ min: 0, max: 5000 }).map(String),
  fc.constantFrom('007', '-0', '', '1e3', '1073741824', '-1073741825', '9007199254740993', 'abc'),
  fc.integer({ min: -5, max: 5 }).map(String),
);
const expiry = fc.oneof(
  fc.constantFrom(0, -1, NOW, NOW - 1, NOW + 1, 4102444800, 1.5, null, 'soon'),
  fc.integer({ min: 0, max: 2 * NOW }),
);
const listItem = fc.oneof(
  fc.integer({ min: -3, max: 5000 }),
  idText,
  fc.constantFrom(2 ** 31, 2 ** 53 + 2, 1.5, null),
);
const segmentsBin = fc.oneof(
  fc.dictionary(idText, expiry, { maxKeys: 40 }),
  fc.array(listItem, { maxLength: 40 }),
  fc.constantFrom('not segments', 7, null),
);

describe('the embedded store keeping segments in compact form', () => {
  it('answers the same live segments, in the same order, as the record as written', async () => {
    const dir = await tempDir();
    await fc.assert(
      fc.asyncProperty(fc.array(segmentsBin, { minLength: 1, maxLength: 20 }), async (bins) => {
        const path = join(dir, 'profiles.ndjson.gz');
        const records = bins.map((segments, i) => ({
          set: '111111',
          key: `id${i}`,
          bins: { segments, country: 'BE', '7': 'integer-named attribute' },
        }));
        await writeProfilesFile(path, records);
        const store = new EmbeddedProfileStore(path, 'segments');
        const keys = records.map((r) => ({ set: r.set, id: r.key, keyType: 'string' as const }));
        const stored = await store.getMany(keys);
        records.forEach((record, i) => {
          const written = JSON.parse(JSON.stringify(record.bins));
          const kept = stored[i];
          if (!kept) throw new Error(`record ${i} not found`);
          const expected = decodeBins(written, 'segments', NOW);
          const actual = decodeBins(kept, 'segments', NOW);
          // A compact id is the number the catalog keys the same text by (canonical only).
          expect(actual.segmentIds.map(String)).toEqual(expected.segmentIds.map(String));
          expect(actual.attributes).toEqual(expected.attributes);
        });
      }),
      { numRuns: 60 },
    );
  });

  it('keeps a bin as it is when an id or expiry has no exact compact form', () => {
    expect(SegmentTable.from({ '007': 1 })).toBeUndefined();
    expect(SegmentTable.from({ '1073741824': 1 })).toBeUndefined();
    expect(SegmentTable.from({ '12': 'soon' })).toBeUndefined();
    expect(SegmentTable.from(['12', 2 ** 40])).toBeUndefined();
    expect(SegmentTable.from(new Map([[1, 0]]))).toBeUndefined();
    expect(SegmentTable.from({ '12': 0, '-3': NOW })).toBeInstanceOf(SegmentTable);
  });
});
