// Peak memory of a mapping refresh: the old index and the new one being built, held at once, as
// every instance does within one refresh interval of a publication. In a fresh process per size.
//   tsx test/bench/refresh-memory-bench.ts 1000000 5000000
import { spawnSync } from 'node:child_process';
import { writeMappingSnapshot } from './mapping-load-bench.js';

/** Memory of one refresh, per id. */
export interface RefreshMemoryFigures {
  readonly ids: number;
  /** The manifest's estimate of one index (what MAPPING_MAX_BYTES is compared with). */
  readonly indexBytesPerId: number;
  /** RSS growth with the old index loaded. */
  readonly oldBytesPerId: number;
  /** Peak RSS growth during the refresh (old + new + the decoder's buffers). */
  readonly refreshPeakBytesPerId: number;
  readonly baseRssBytes: number;
}

/** Measures a refresh of a snapshot of `ids` ids (written to `dir` unless given). */
export async function benchRefreshMemory(ids: number, dir?: string): Promise<RefreshMemoryFigures> {
  const snapshotDir = dir ?? (await writeMappingSnapshot(ids));
  const child = spawnSync(
    'tsx',
    [new URL('./refresh-memory-child.ts', import.meta.url).pathname, snapshotDir],
    {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '--expose-gc --max-old-space-size=8192' },
    },
  );
  if (child.status !== 0) throw new Error(`refresh measurement failed: ${child.stderr}`);
  const m = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}') as {
    ids: number;
    memoryBytes: number;
    baseRss: number;
    oldRss: number;
    peakRss: number;
  };
  return {
    ids: m.ids,
    indexBytesPerId: m.memoryBytes / m.ids,
    oldBytesPerId: (m.oldRss - m.baseRss) / m.ids,
    refreshPeakBytesPerId: (m.peakRss - m.baseRss) / m.ids,
    baseRssBytes: m.baseRss,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number);
  for (const ids of sizes.length > 0 ? sizes : [1_000_000]) {
    const f = await benchRefreshMemory(ids);
    console.log(
      `refresh ${f.ids} ids: index ${f.indexBytesPerId.toFixed(1)} B/id (manifest), ` +
        `old loaded ${f.oldBytesPerId.toFixed(1)} B/id RSS, refresh peak ${f.refreshPeakBytesPerId.toFixed(1)} B/id RSS ` +
        `(${((f.refreshPeakBytesPerId * f.ids) / 1024 ** 2).toFixed(0)} MiB over a base of ${(f.baseRssBytes / 1024 ** 2).toFixed(0)} MiB)`,
    );
  }
}
