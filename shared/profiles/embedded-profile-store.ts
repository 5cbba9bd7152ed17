import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import { BackendUnavailableError } from '../errors.js';
import type { KeyType } from '../id-types.js';
import { chain } from '../streams.js';
import { textLines } from '../text-lines.js';
import type { ProfileBins, ProfileKey, ProfileStore } from './profile-store.js';

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
 * embedded default for local runs with no Aerospike. The file is read on first use.
 */
export class EmbeddedProfileStore implements ProfileStore {
  readonly name = 'embedded';
  private records: Promise<Map<string, ProfileBins>> | undefined;
  private loaded: Map<string, ProfileBins> | undefined;

  constructor(private readonly path: string) {}

  getMany(keys: readonly ProfileKey[]): Promise<(ProfileBins | undefined)[]> {
    const read = (records: Map<string, ProfileBins>) =>
      keys.map((key) => records.get(storeKey(key.set, key.id, key.keyType)));
    // Once loaded, answer without the extra promise hops of an async function.
    if (this.loaded) return Promise.resolve(read(this.loaded));
    return this.load().then(read);
  }

  async ping(): Promise<void> {
    await this.load();
  }

  async close(): Promise<void> {
    this.records = undefined;
    this.loaded = undefined;
  }

  private load(): Promise<Map<string, ProfileBins>> {
    this.records ??= readProfiles(this.path).then(
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

async function readProfiles(path: string): Promise<Map<string, ProfileBins>> {
  const records = new Map<string, ProfileBins>();
  let lineNo = 0;
  for await (const line of textLines(chain(createReadStream(path), createGunzip()))) {
    lineNo++;
    const parsed = recordSchema.safeParse(JSON.parse(line));
    if (!parsed.success) throw new Error(`line ${lineNo} of ${path} is not a profile record`);
    const { set, key, keyType, bins } = parsed.data;
    if (keyType === 'integer' && !/^-?[0-9]+$/.test(key)) {
      throw new Error(`line ${lineNo} of ${path} has an integer key that is not an integer`);
    }
    records.set(storeKey(set, keyType === 'integer' ? BigInt(key).toString() : key, keyType), bins);
  }
  return records;
}

function storeKey(set: string, id: string, keyType: KeyType): string {
  return `${set}\u0000${keyType === 'integer' ? 'i' : 's'}${id}`;
}
