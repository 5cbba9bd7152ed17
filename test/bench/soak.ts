// `npm run soak`: a bounded soak. The profile function (embedded store, functions-framework, its
// own process) takes SOAK_SECONDS (60) of load at SOAK_CONNECTIONS (64) over many ids while new
// snapshot versions are published every few seconds and the function refreshes every second.
// Prints requests, errors, the versions served and the heap trend read from /health.
import { join } from 'node:path';
import { Readable } from 'node:stream';
import autocannon from 'autocannon';
import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import { generateDemoDataset } from '../../shared/demo/demo-dataset.js';
import { ensureDemoData } from '../../shared/demo/write-demo-data.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { mappingCodec } from '../../shared/mapping/mapping-codec.js';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';
import { publishSnapshot } from '../../shared/snapshots/publish-snapshot.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { startFunction } from './function-process.js';

const seconds = Number(process.env.SOAK_SECONDS ?? 60);
const connections = Number(process.env.SOAK_CONNECTIONS ?? 64);
const registry = defaultIdTypeRegistry();

const dir = await makeTempDir();
const demo = { snapshotDir: join(dir, 'snapshots'), profilesPath: join(dir, 'profiles.ndjson.gz') };
await ensureDemoData(demo, registry);
const data = generateDemoDataset();
const store = new LocalSnapshotStore(demo.snapshotDir);
const ids = data.persons.flatMap((p) => p.map((e) => e.id)).slice(0, 5_000);

const profile = await startFunction('profile', {
  SNAPSHOT_URI: `file:${demo.snapshotDir}`,
  EMBEDDED_PROFILES_PATH: demo.profilesPath,
  REFRESH_INTERVAL_SECS: '1',
});

interface Sample {
  readonly at: number;
  readonly heapUsedBytes: number;
  readonly rssBytes: number;
  readonly mapping: string;
  readonly status: string;
}
const samples: Sample[] = [];
const started = Date.now();
let running = true;

// Publishes a new catalog and mapping every 3 s: alternately the full and a slightly smaller set.
const publisher = (async () => {
  let round = 0;
  while (running) {
    await new Promise((r) => setTimeout(r, 3_000));
    round++;
    const persons =
      round % 2 === 0 ? data.persons : data.persons.slice(0, data.persons.length - 50);
    const segments =
      round % 2 === 0 ? data.segments : data.segments.slice(0, data.segments.length - 5);
    await publishSnapshot(store, mappingCodec(registry), Readable.from(persons), {
      source: { round: String(round) },
      minRowsRatio: 0,
    });
    await publishSnapshot(store, catalogCodec, Readable.from(segments), {
      source: { round: String(round) },
      minRowsRatio: 0,
    });
  }
})();

const sampler = (async () => {
  while (running) {
    const health = (await (await fetch(`${profile.url}/health`)).json()) as {
      status: string;
      memory: { heapUsedBytes: number; rssBytes: number };
      snapshots: { mapping: { version: string } };
    };
    samples.push({
      at: (Date.now() - started) / 1000,
      heapUsedBytes: health.memory.heapUsedBytes,
      rssBytes: health.memory.rssBytes,
      mapping: health.snapshots.mapping.version,
      status: health.status,
    });
    await new Promise((r) => setTimeout(r, 1_000));
  }
})();

let next = 0;
const result = await autocannon({
  url: profile.url,
  connections,
  duration: seconds,
  requests: [
    {
      setupRequest: (request) => ({ ...request, path: `/?id=${ids[next++ % ids.length]}` }),
    },
  ],
});
running = false;
await Promise.all([publisher, sampler]);
await profile.stop();

/** Least-squares slope of y over x. */
function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

const MB = 1024 * 1024;
// The first third is warm-up (snapshots load, JIT, first refreshes); the trend is over the rest.
const steady = samples.filter((s) => s.at > seconds / 3);
// Heap in use swings with every snapshot swap and collection; its floor per 10 s window (what
// survives collections) is what would climb if something leaked.
const floors: { x: number; y: number }[] = [];
for (let from = seconds / 3; from < seconds; from += 10) {
  const window = steady.filter((s) => s.at >= from && s.at < from + 10);
  if (window.length > 0)
    floors.push({ x: from + 5, y: Math.min(...window.map((s) => s.heapUsedBytes / MB)) });
}
const heapSlope = slope(floors);
const heaps = steady.map((s) => s.heapUsedBytes / MB);
const versions = new Set(samples.map((s) => s.mapping)).size;
console.log(
  [
    `soak: ${seconds} s at ${connections} connections over ${ids.length} ids, snapshots republished every 3 s`,
    `requests: ${result.requests.total} (${Math.round(result.requests.average)}/s), p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`,
    `errors: ${result.errors}, timeouts: ${result.timeouts}, non-2xx: ${result.non2xx}`,
    `mapping versions seen by /health: ${versions}; health statuses: ${[...new Set(samples.map((s) => s.status))].join(', ')}`,
    `heap used after warm-up: min ${Math.min(...heaps).toFixed(0)} MB, max ${Math.max(...heaps).toFixed(0)} MB over ${steady.length} samples`,
    `heap floor per 10 s window: ${floors.map((f) => f.y.toFixed(0)).join(', ')} MB (trend ${heapSlope.toFixed(2)} MB/s)`,
    `rss at end: ${((samples.at(-1)?.rssBytes ?? 0) / MB).toFixed(0)} MB`,
  ].join('\n'),
);
if (result.errors + result.timeouts + result.non2xx > 0) process.exitCode = 1;
