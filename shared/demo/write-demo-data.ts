import { createWriteStream } from 'node:fs';
import { access, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { catalogCodec } from '../catalog/catalog-codec.js';
import type { IdTypeRegistry } from '../id-types.js';
import { type MappingPerson, mappingCodec } from '../mapping/mapping-codec.js';
import { LocalSnapshotStore } from '../snapshots/local-snapshot-store.js';
import { publishSnapshot } from '../snapshots/publish-snapshot.js';
import { type DemoDatasetOptions, type DemoSamples, generateDemoDataset } from './demo-dataset.js';

/** Where the demo data lives on disk. */
export interface DemoDataPaths {
  /** Local snapshot store root (what `SNAPSHOT_URI=file:<dir>` points at). */
  readonly snapshotDir: string;
  /** The embedded profile store's file. */
  readonly profilesPath: string;
}

/** What ensureDemoData found or made. */
export interface DemoDataResult {
  readonly created: boolean;
  readonly samples: DemoSamples;
}

/**
 * Creates the demo dataset unless it is already there: both snapshots published through the
 * same code the scheduled jobs use (so the format is the production one), and the profiles
 * file of the embedded store. Sample ids are kept next to the profiles.
 */
export async function ensureDemoData(
  paths: DemoDataPaths,
  registry: IdTypeRegistry,
  options?: DemoDatasetOptions,
): Promise<DemoDataResult> {
  const samplesPath = join(dirname(paths.profilesPath), 'demo-samples.json');
  const store = new LocalSnapshotStore(paths.snapshotDir);
  const present =
    (await exists(paths.profilesPath)) &&
    (await exists(samplesPath)) &&
    (await store.readManifest('catalog')) !== undefined &&
    (await store.readManifest('mapping')) !== undefined;
  if (present) {
    const samples = JSON.parse(await readFile(samplesPath, 'utf8')) as DemoSamples;
    return { created: false, samples };
  }

  const data = generateDemoDataset(options);
  const source = { generator: 'demo', seed: String(options?.seed ?? 'default') };
  await publishSnapshot(store, catalogCodec, Readable.from(data.segments), {
    source,
    minRowsRatio: 0,
    force: true,
  });
  // In the order the mapping job writes (ids by id, then type code): answers list linked ids so.
  await publishSnapshot(
    store,
    mappingCodec(registry),
    Readable.from(data.persons.map(byIdThenType)),
    {
      source,
      minRowsRatio: 0,
      force: true,
    },
  );
  await mkdir(dirname(paths.profilesPath), { recursive: true });
  const tmp = `${paths.profilesPath}.tmp`;
  await pipeline(
    Readable.from(data.profiles.map((p) => `${JSON.stringify(p)}\n`)),
    createGzip(),
    createWriteStream(tmp),
  );
  await rename(tmp, paths.profilesPath);
  await writeFile(samplesPath, `${JSON.stringify(data.samples, null, 2)}\n`);
  return { created: true, samples: data.samples };
}

function byIdThenType(person: MappingPerson): MappingPerson {
  const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...person].sort((a, b) => compare(a.id, b.id) || compare(a.typeCode, b.typeCode));
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
