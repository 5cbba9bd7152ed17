import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import { BackendUnavailableError } from '../errors.js';
import type { KeyType } from '../id-types.js';
import { chain } from '../streams.js';
import { textLines } from '../text-lines.js';
import type { ProfileBins, ProfileKey, ProfileStore } from './profile-store.js';
import { SegmentSlab, SegmentTable } from './segment-table.js';

const recordSchema = z.object({
  set: z.string().min(1),
  key: z.string().min(1),
  /** As in Aerospike, an integer key is a different record from the same digits as a string. */
  keyType: z.enum(['string', 'integer']).default('string'),
  bins: z.record(z.string(), z.unknown()),
});

/** One line of an embedded profile file. */
export type EmbeddedProfileRecord = z.input<typeof recordSchema>;

/**
 * An in-memory profile store read from a gzip NDJSON file of `{set, key, bins}` lines: the
 * embedded default for local runs with no Aerospike. The file is read on first use. Segments
 * bins are kept in compact form where they can be (see SegmentTable): answers are the same.
 */
export class EmbeddedProfileStore implements ProfileStore {
  readonly name = 'embedded';
  private records: Promise<RecordsBySet> | undefined;
  private loaded: RecordsBySet | undefined;

  constructor(
    private readonly path: string,
    private readonly segmentsBin = 'segments',
  ) {}

  async getMany(keys: readonly ProfileKey[]): Promise<(ProfileBins | undefined)[]> {
    return readRecords(this.loaded ?? (await this.load()), keys);
  }

  async ping(): Promise<void> {
    await this.load();
  }

  async close(): Promise<void> {
    this.records = undefined;
    this.loaded = undefined;
  }

  private load(): Promise<RecordsBySet> {
    this.records ??= readProfiles(this.path, this.segmentsBin).then(
      (records) => {
        this.loaded = records;
        return records;
      },
      (err: unknown) => {
        this.records = undefined; // let the next call try again
        throw new BackendUnavailableError('embedded', `cannot read profiles from ${this.path}`, {
          cause: err,
        });
      },
    );
    return this.records;
  }
}

/** Records by set, then by key type and key: no key is built per lookup. */
type RecordsBySet = Map<string, Record<KeyType, Map<string, ProfileBins>>>;

function readRecords(
  records: RecordsBySet,
  keys: readonly ProfileKey[],
): (ProfileBins | undefined)[] {
  const found: (ProfileBins | undefined)[] = [];
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as ProfileKey;
    const bySet = records.get(key.set);
    found.push(bySet === undefined ? undefined : bySet[key.keyType].get(key.id));
  }
  return found;
}

async function readProfiles(path: string, segmentsBin: string): Promise<RecordsBySet> {
  const records: RecordsBySet = new Map();
  const slab = new SegmentSlab();
  let lineNo = 0;
  for await (const line of textLines(chain(createReadStream(path), createGunzip()))) {
    lineNo++;
    const parsed = recordSchema.safeParse(JSON.parse(line));
    if (!parsed.success) throw new Error(`line ${lineNo} of ${path} is not a profile record`);
    const { set, key, keyType, bins } = parsed.data;
    if (keyType === 'integer' && !/^-?[0-9]+$/.test(key)) {
      throw new Error(`line ${lineNo} of ${path} has an integer key that is not an integer`);
    }
    const segments = SegmentTable.from(bins[segmentsBin], slab);
    if (segments) bins[segmentsBin] = segments;
    let bySet = records.get(set);
    if (!bySet) {
      bySet = { string: new Map(), integer: new Map() };
      records.set(set, bySet);
    }
    bySet[keyType].set(keyType === 'integer' ? BigInt(key).toString() : key, bins);
  }
  return records;
}
