// One measured mapping load, in a fresh process so that its heap is its own:
//   node --expose-gc (via tsx) mapping-load-child.ts <snapshot dir> compact|naive
// Prints {"ms": ..., "bytes": ..., "ids": ...} where bytes is the retained heap plus
// array buffers (typed arrays and Buffers live outside the JS heap).
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { mappingCodec } from '../../shared/mapping/mapping-codec.js';
import { loadSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';
import { parseManifest } from '../../shared/snapshots/manifest.js';

const [dir = '', how = 'compact'] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
// Array buffers are released a tick after the collection that finds them dead.
const retained = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** The baseline: what one would write first, a Map from every id to its person's ids. */
async function naiveLoad(
  snapshotDir: string,
): Promise<{ value: Map<string, string[]>; ids: number }> {
  const store = new LocalSnapshotStore(snapshotDir);
  const manifest = parseManifest((await store.readManifest('mapping'))?.body ?? '', 'mapping');
  const lines = createInterface({
    input: createReadStream(join(snapshotDir, manifest.object)).pipe(createGunzip()),
  });
  const value = new Map<string, string[]>();
  for await (const line of lines) {
    const flat = JSON.parse(line) as string[];
    const ids = flat.filter((_, i) => i % 2 === 0);
    for (const id of ids) value.set(id, ids);
  }
  return { value, ids: value.size };
}

const before = await retained();
const started = performance.now();
let keep: unknown;
let ids: number;
if (how === 'naive') {
  const loaded = await naiveLoad(dir);
  keep = loaded.value;
  ids = loaded.ids;
} else {
  const loaded = await loadSnapshot(
    new LocalSnapshotStore(dir),
    mappingCodec(defaultIdTypeRegistry()),
    undefined,
    {
      stallTimeoutMs: 60_000,
    },
  );
  keep = loaded?.value;
  ids = loaded?.value.idCount ?? 0;
}
const ms = performance.now() - started;
const bytes = (await retained()) - before;
console.log(JSON.stringify({ ms, bytes, ids, kept: keep !== undefined }));
