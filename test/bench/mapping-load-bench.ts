// Mapping snapshot load: the compact index against a naive Map<string, string[]> built from the
// same file, each in a fresh process. Prints load time and retained bytes per id.
//   tsx test/bench/mapping-load-bench.ts 1000000 5000000
import { spawnSync } from 'node:child_process';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { type MappingPerson, mappingCodec } from '../../shared/mapping/mapping-codec.js';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';
import { publishSnapshot } from '../../shared/snapshots/publish-snapshot.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { benchPerson, IDS_PER_PERSON } from './bench-data.js';

/** One load, measured. */
export interface LoadMeasure {
  readonly ms: number;
  readonly bytesPerId: number;
  readonly ids: number;
}

/** Figures of both loaders on one snapshot. */
export interface MappingLoadFigures {
  readonly ids: number;
  readonly compact: LoadMeasure;
  readonly naive: LoadMeasure;
}

/** Publishes a mapping snapshot of `ids` ids (persons of three) into a new local directory. */
export async function writeMappingSnapshot(ids: number): Promise<string> {
  const dir = await makeTempDir();
  const persons = Math.ceil(ids / IDS_PER_PERSON);
  async function* rows(): AsyncIterable<MappingPerson> {
    for (let i = 0; i < persons; i++)
      yield benchPerson(i).map(([id, typeCode]) => ({ id, typeCode }));
  }
  await publishSnapshot(
    new LocalSnapshotStore(dir),
    mappingCodec(defaultIdTypeRegistry()),
    rows(),
    {
      source: { generator: 'bench' },
      minRowsRatio: 0,
    },
  );
  return dir;
}

function measure(dir: string, how: 'compact' | 'naive'): LoadMeasure {
  const child = spawnSync(
    'tsx',
    [new URL('./mapping-load-child.ts', import.meta.url).pathname, dir, how],
    {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '--expose-gc --max-old-space-size=8192' },
    },
  );
  if (child.status !== 0) throw new Error(`mapping load (${how}) failed: ${child.stderr}`);
  const { ms, bytes, ids } = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}') as {
    ms: number;
    bytes: number;
    ids: number;
  };
  return { ms, bytesPerId: bytes / ids, ids };
}

/** Loads a snapshot of `ids` ids with both loaders. */
export async function benchMappingLoad(ids: number, dir?: string): Promise<MappingLoadFigures> {
  const snapshotDir = dir ?? (await writeMappingSnapshot(ids));
  return { ids, compact: measure(snapshotDir, 'compact'), naive: measure(snapshotDir, 'naive') };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number);
  for (const ids of sizes.length > 0 ? sizes : [1_000_000]) {
    const f = await benchMappingLoad(ids);
    console.log(
      `mapping load ${f.compact.ids} ids: compact ${f.compact.ms.toFixed(0)} ms, ${f.compact.bytesPerId.toFixed(1)} B/id; ` +
        `naive Map ${f.naive.ms.toFixed(0)} ms, ${f.naive.bytesPerId.toFixed(1)} B/id; ` +
        `${(f.naive.ms / f.compact.ms).toFixed(2)}x faster, ${(f.naive.bytesPerId / f.compact.bytesPerId).toFixed(2)}x smaller`,
    );
  }
}
