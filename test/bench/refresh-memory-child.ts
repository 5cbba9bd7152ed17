// One measured mapping refresh, in a fresh process so that its memory is its own:
//   node --expose-gc (via tsx) refresh-memory-child.ts <snapshot dir>
// Loads the snapshot (the "old" index), then loads it again while holding the old one, as an
// instance's refresh does, and reads the kernel's peak-RSS mark around that second load.
// Prints {"ids", "memoryBytes", "baseRss", "oldRss", "peakRss"} (bytes).
import { readFileSync, writeFileSync } from 'node:fs';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { mappingCodec } from '../../shared/mapping/mapping-codec.js';
import { loadSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';

const [dir = ''] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
};
/** The kernel's high-water mark of this process's resident set (VmHWM), in bytes. */
const peakRss = () => {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
};

const store = new LocalSnapshotStore(dir);
const codec = mappingCodec(defaultIdTypeRegistry());
const load = () => loadSnapshot(store, codec, undefined, { stallTimeoutMs: 600_000 });

await settle();
const baseRss = process.memoryUsage.rss();
const old = await load();
await settle();
const oldRss = process.memoryUsage.rss();
// "5" resets the peak-RSS mark to the current RSS (Linux >= 4.0).
writeFileSync('/proc/self/clear_refs', '5');
const fresh = await load();
const peak = peakRss();
console.log(
  JSON.stringify({
    ids: old?.value.idCount ?? 0,
    memoryBytes: fresh?.manifest.memoryBytes ?? 0,
    baseRss,
    oldRss,
    peakRss: peak,
    kept: old !== undefined && fresh !== undefined,
  }),
);
