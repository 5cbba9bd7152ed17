// `npm run bench`: every performance figure of the service beside a baseline measured in the
// same run, as one table. Nothing here asserts a time: the machines are shared and noisy.
//   BENCH_SECONDS=8  seconds per load run (a, b, g, j, k); part i gives each side twice that in
//     all, spread over its rounds
//   BENCH_MIX_ROUNDS=8  alternating rounds of part i (each side 2 * BENCH_SECONDS / rounds per round)
//   BENCH_SIZES=1000000,5000000  mapping sizes in ids (c, d, f)
//   BENCH_SYNC_SIZES=1000000,5000000  syncMapping sizes in ids (h)
//   BENCH_SYNC_WORKERS=1,2,4  shard-worker processes of (h), on the first sync size
//   BENCH_PARTS=a,b,...  a subset of the parts; (a) always runs (b and e use its ceiling and
//     answer), and (k) runs with (j)
import { readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import {
  DEFAULT_DEMO_OPTIONS,
  type DemoDataset,
  generateDemoDataset,
} from '../../shared/demo/demo-dataset.js';
import { ensureDemoData } from '../../shared/demo/write-demo-data.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { MEMORY_FIGURES } from '../../shared/memory-budget.js';
import type { EmbeddedProfileRecord } from '../../shared/profiles/embedded-profile-store.js';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';
import { publishSnapshot } from '../../shared/snapshots/publish-snapshot.js';
import { writeProfilesFile } from '../helpers/profiles-file.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { benchAttacks } from './attack-bench.js';
import { benchPerson } from './bench-data.js';
import { benchBigtableRequests, benchSync, benchWorkers } from './bigtable-bench.js';
import { coldStart } from './cold-start-bench.js';
import {
  benchAerospike,
  benchEmbedded,
  benchMix,
  benchSelections,
  benchVariants,
  SELECTION_FIELDS,
} from './http-bench.js';
import type { LoadFigures } from './http-load.js';
import { benchMappingJob } from './mapping-job-bench.js';
import { benchMappingLoad, writeMappingSnapshot } from './mapping-load-bench.js';
import { benchProduction } from './production-bench.js';
import { benchRefreshMemory } from './refresh-memory-bench.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const sizes = (process.env.BENCH_SIZES ?? '1000000,5000000').split(',').map(Number);
const parts = new Set((process.env.BENCH_PARTS ?? 'a,i,n,j,l,m,b,c,d,e,f,g,h').split(','));
const syncSizes = (process.env.BENCH_SYNC_SIZES ?? '1000000,5000000').split(',').map(Number);
const syncWorkers = (process.env.BENCH_SYNC_WORKERS ?? '1,2,4').split(',').map(Number);

interface Row {
  readonly part: string;
  readonly figure: string;
  readonly value: string;
  readonly baseline: string;
  readonly ratio: string;
  readonly target: string;
}
const rows: Row[] = [];
const note = (message: string) => console.error(`bench: ${message}`);
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const MB = 1024 * 1024;

/** Rows of a part measured at several sizes: each beside the first, to show memory stays flat. */
function throughputRows(
  part: string,
  label: string,
  runs: readonly {
    ids: number;
    idsPerSecond: number;
    peakRssBytes: number;
    baselineRssBytes: number;
  }[],
) {
  const first = runs[0];
  for (const r of runs) {
    rows.push({
      part,
      figure: `${label}, ${fmt(r.ids)} ids: ids/s, peak RSS MB`,
      value: `${fmt(r.idsPerSecond)}, ${fmt(r.peakRssBytes / MB)}`,
      baseline:
        first && r !== first
          ? `${fmt(first.idsPerSecond)}, ${fmt(first.peakRssBytes / MB)} (${fmt(first.ids)} ids)`
          : `RSS before: ${fmt(r.baselineRssBytes / MB)}`,
      ratio:
        first && r !== first
          ? `RSS x${(r.peakRssBytes / first.peakRssBytes).toFixed(2)} for x${(r.ids / first.ids).toFixed(0)} rows`
          : '-',
      target: 'flat memory',
    });
  }
}

function loadRows(part: string, label: string, figures: LoadFigures[], ceiling: LoadFigures[]) {
  figures.forEach((f, i) => {
    const c = ceiling[i] as LoadFigures;
    const ratio = f.requestsPerSec / c.requestsPerSec;
    rows.push({
      part,
      figure: `${label}, ${f.connections} connections: req/s (p50 / p99 ms)`,
      value: `${fmt(f.requestsPerSec)} (${f.p50Ms} / ${f.p99Ms})${f.errors + f.non2xx > 0 ? ` ${f.errors + f.non2xx} errors` : ''}`,
      baseline: `${fmt(c.requestsPerSec)} (${c.p50Ms} / ${c.p99Ms})`,
      ratio: `${(ratio * 100).toFixed(0)}% of ceiling`,
      target: ratio >= 0.8 ? '>= 80%: met' : '>= 80%: missed',
    });
  });
}

/** A fixed shuffle: every run asks the same ids in the same order. */
function shuffled(ids: readonly string[]): string[] {
  return ids
    .map((id, i) => [id, (i * 2_654_435_761) % 4_294_967_296] as const)
    .sort((x, y) => x[1] - y[1])
    .map(([id]) => id);
}

note(
  `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${fmt(totalmem() / 1024 ** 3)} GiB, node ${process.version}`,
);

// (a) and (b): the profile function over HTTP, demo data.
const work = await makeTempDir();
const demo = {
  snapshotDir: join(work, 'demo/snapshots'),
  profilesPath: join(work, 'demo/profiles.ndjson.gz'),
};
const { samples } = await ensureDemoData(demo, defaultIdTypeRegistry());
note('(a) profile on the embedded store, and its ceiling');
const a = await benchEmbedded(demo, samples.linked, work, seconds);
loadRows(
  'a',
  `profile, embedded store (${fmt(a.answer.bytes / 1024, 1)} KiB answer)`,
  a.profile,
  a.ceiling,
);

// (i) the target of issue 12: a mix of random demo ids, default logging, against a ceiling that
// serves a fixed body of the mix's average size; (j) batches; (k) smaller answers. The demo data
// as ensureDemoData wrote it, generated once for (i, j) and (g), then dropped so that the RSS
// figures of later parts do not carry it.
let demoData: DemoDataset | undefined = generateDemoDataset(DEFAULT_DEMO_OPTIONS);
const mixIds = shuffled(demoData.profiles.map((p) => p.key));
if (parts.has('i')) {
  note('(i) profile on a mix of random ids, and a ceiling of the same average size');
  const mix = await benchMix(demo, mixIds, work, seconds);
  const rounds = mix.ratios.map((r) => `${(r * 100).toFixed(0)}`).join('/');
  rows.push({
    part: 'i',
    figure: `profile, mix of ${fmt(mixIds.length)} ids (avg ${fmt(mix.profile.bytesPerAnswer / 1024, 1)} KiB), 32 connections, default logging, ${mix.ratios.length} alternating rounds: req/s (p50 / p99 ms), server CPU per request`,
    value: `${fmt(mix.profile.requestsPerSec)} (${mix.profile.p50Ms} / ${mix.profile.p99Ms}), ${fmt(mix.profile.cpuUsPerRequest)} us${mix.profile.errors + mix.profile.non2xx > 0 ? ` ${mix.profile.errors + mix.profile.non2xx} errors` : ''}`,
    baseline: `${fmt(mix.ceiling.requestsPerSec)} (${mix.ceiling.p50Ms} / ${mix.ceiling.p99Ms}), ${fmt(mix.ceiling.cpuUsPerRequest)} us ceiling`,
    ratio: `${(mix.ratio * 100).toFixed(0)}% of ceiling (median; rounds ${rounds}%)`,
    target: `>= 60%: ${mix.ratio >= 0.6 ? 'met' : 'missed'}`,
  });
}
if (parts.has('j')) {
  note('(j, k) batches of 100 ids, and segmentFields=id,name, beside single full GETs');
  const v = await benchVariants(demo, mixIds, seconds);
  const batchIds = v.batch.requestsPerSec * 100;
  rows.push({
    part: 'j',
    figure: 'batch of 100 ids, 32 connections: req/s, ids/s (p50 / p99 ms)',
    value: `${fmt(v.batch.requestsPerSec)}, ${fmt(batchIds)} ids/s (${v.batch.p50Ms} / ${v.batch.p99Ms})`,
    baseline: `${fmt(v.full.requestsPerSec)} ids/s as single GETs`,
    ratio: `x${(batchIds / v.full.requestsPerSec).toFixed(2)} ids/s`,
    target: '-',
  });
  rows.push({
    part: 'k',
    figure: 'segmentFields=id,name, mix, 32 connections: bytes per answer, req/s',
    value: `${fmt(v.small.bytesPerAnswer)} B, ${fmt(v.small.requestsPerSec)}`,
    baseline: `${fmt(v.full.bytesPerAnswer)} B, ${fmt(v.full.requestsPerSec)} full answers`,
    ratio: `x${(v.full.bytesPerAnswer / v.small.bytesPerAnswer).toFixed(2)} smaller, x${(v.small.requestsPerSec / v.full.requestsPerSec).toFixed(2)} req/s`,
    target: '-',
  });
}

if (parts.has('l')) {
  note(
    '(l) segmentFields on a 50,000-segment, 8-field catalog: a random selection per request beside a fixed one',
  );
  const large = { ...DEFAULT_DEMO_OPTIONS, segments: 50_000 };
  const dir = {
    snapshotDir: join(work, 'large-catalog/snapshots'),
    profilesPath: join(work, 'large-catalog/profiles.ndjson.gz'),
  };
  await ensureDemoData(dir, defaultIdTypeRegistry(), large);
  const data = generateDemoDataset(large);
  // The demo's six segment fields and two more, published over the demo's own catalog.
  const segments = data.segments.map((s, i) => ({
    ...s,
    reach: (i % 1000) / 1000,
    updated: `day-${i % 365}`,
  }));
  if (Object.keys(segments[0] ?? {}).join() !== SELECTION_FIELDS.join()) {
    throw new Error('part l: the catalog does not have the fields the selections choose from');
  }
  await publishSnapshot(
    new LocalSnapshotStore(dir.snapshotDir),
    catalogCodec,
    Readable.from(segments),
    {
      source: {},
      minRowsRatio: 0,
      force: true,
    },
  );
  const l = await benchSelections(dir, shuffled(data.profiles.map((p) => p.key)), seconds);
  const rounds = l.ratios.map((r) => `${(r * 100).toFixed(0)}`).join('/');
  // Judged on the server's CPU per request (what a selection costs it); req/s beside it moves
  // with whatever else this shared machine runs.
  const cpuRatio = l.cpuRatio; // fixed CPU per request over random
  rows.push({
    part: 'l',
    figure: `random segmentFields per request (255 selections), 50,000 segments, mix, 32 connections, ${l.ratios.length} alternating rounds: server CPU per request, req/s (p50 / p99 ms)`,
    value: `${fmt(l.random.cpuUsPerRequest)} us, ${fmt(l.random.requestsPerSec)} (${l.random.p50Ms} / ${l.random.p99Ms})${l.random.errors + l.random.non2xx > 0 ? ` ${l.random.errors + l.random.non2xx} errors` : ''}`,
    baseline: `${fmt(l.fixed.cpuUsPerRequest)} us, ${fmt(l.fixed.requestsPerSec)} (${l.fixed.p50Ms} / ${l.fixed.p99Ms}), segmentFields=id,name,type${l.fixed.errors + l.fixed.non2xx > 0 ? ` ${l.fixed.errors + l.fixed.non2xx} errors` : ''}`,
    ratio: `${(cpuRatio * 100).toFixed(0)}% of fixed's requests per CPU second (median of rounds); req/s ${(l.ratio * 100).toFixed(0)}% (median; rounds ${rounds}%)`,
    target: `>= 85%: ${cpuRatio >= 0.85 ? 'met' : 'missed'}`,
  });
}

if (parts.has('n')) {
  note('(n) the production path: profile on the Aerospike store against its production ceiling');
  const profiles = gunzipSync(await readFile(demo.profilesPath))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as EmbeddedProfileRecord);
  // The issue's experiment: 1,000 random demo ids (a fixed shuffle).
  const n = await benchProduction(demo, profiles, mixIds.slice(0, 1_000), work, seconds);
  const rounds = n.cpuRatios.map((r) => `${(r * 100).toFixed(0)}`).join('/');
  rows.push({
    part: 'n',
    figure: `profile, Aerospike store, 1,000 random demo ids, 32 connections, ${n.cpuRatios.length} alternating rounds: function CPU per request (test server excluded), req/s (p50 / p99 ms)`,
    value: `${fmt(n.profile.cpuUsPerRequest)} us, ${fmt(n.profile.requestsPerSec)} (${n.profile.p50Ms} / ${n.profile.p99Ms})${n.profile.errors + n.profile.non2xx > 0 ? ` ${n.profile.errors + n.profile.non2xx} errors` : ''}`,
    baseline: `${fmt(n.ceiling.cpuUsPerRequest)} us, ${fmt(n.ceiling.requestsPerSec)} (${n.ceiling.p50Ms} / ${n.ceiling.p99Ms}) production ceiling`,
    ratio: `${(n.cpuRatio * 100).toFixed(0)}% of the ceiling's requests per CPU second (median; rounds ${rounds}%); req/s ${(n.reqRatio * 100).toFixed(0)}%`,
    target: `>= 90%: ${n.cpuRatio >= 0.9 ? 'met' : 'missed'}`,
  });
}

if (parts.has('m')) {
  note('(m) crafted requests, each beside a normal GET (or a normal batch of 100 ids)');
  const superNode = (demoData.persons.at(-1) ?? []).map((member) => member.id);
  const m = await benchAttacks(demo, work, { mix: mixIds, superNode }, Math.max(2, seconds / 2));
  const getUs = m.get.cpuUsPerRequest;
  const batchUs = m.batch.cpuUsPerRequest;
  for (const attack of m.attacks) {
    const f = attack.figures;
    const perGet = f.cpuUsPerRequest / getUs;
    // A batch of 100 ids is held to 100 GETs: at most 10x a GET's CPU per id.
    const perIdOfBatch = f.cpuUsPerRequest / (100 * getUs);
    const held = attack.against === 'batch' ? perIdOfBatch : perGet;
    rows.push({
      part: 'm',
      figure: `${attack.name}: server CPU per request, answer bytes, log bytes per request (statuses)`,
      value: `${fmt(f.cpuUsPerRequest)} us, ${fmt(f.bytesPerAnswer)} B, ${fmt(f.logBytesPerRequest, 1)} B (${f.statuses})`,
      baseline:
        attack.against === 'batch'
          ? `${fmt(batchUs)} us a normal batch of 100; ${fmt(getUs)} us a GET`
          : `${fmt(getUs)} us a GET`,
      ratio:
        attack.against === 'batch'
          ? `x${perIdOfBatch.toFixed(2)} a GET per id (x${(f.cpuUsPerRequest / batchUs).toFixed(2)} a normal batch)`
          : `x${perGet.toFixed(2)} a GET`,
      target: `<= 10x${attack.against === 'batch' ? ' per id' : ''}: ${held <= 10 ? 'met' : 'missed'}`,
    });
  }
  rows.push({
    part: 'm',
    figure:
      '50 connections asking the largest batch (100 super-node copies) and never reading: server RSS per connection',
    value: `${fmt(m.slowReaderBytesPerConnection / 1024)} KiB`,
    baseline: `BATCH_MAX_ANSWER_BYTES ${fmt(4 * 1024)} KiB`,
    ratio: '-',
    // The answer may pass the budget by the error results after it, and the buffer it was
    // written in by the last result rendered before the cut.
    target: `<= 1.25x BATCH_MAX_ANSWER_BYTES: ${m.slowReaderBytesPerConnection <= 1.25 * 4 * MB ? 'met' : 'missed'}`,
  });
  rows.push({
    part: 'm',
    figure: 'longest line the function logged during the attacks',
    value: `${fmt(m.longestLogLine)} characters`,
    baseline: '15 KB of path and User-Agent sent',
    ratio: '-',
    target: `<= 2,000: ${m.longestLogLine <= 2_000 ? 'met' : 'missed'}`,
  });
}

if (parts.has('b')) {
  note('(b) profile on the Aerospike store (test server in its own process)');
  const profiles = gunzipSync(await readFile(demo.profilesPath))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as EmbeddedProfileRecord);
  const b = await benchAerospike(
    demo,
    profiles,
    samples.linked,
    await readFile(a.answer.bodyPath),
    seconds,
  );
  loadRows('b', 'profile, Aerospike store', b.figures, a.ceiling);
  rows.push({
    part: 'b',
    figure: 'store round trips per request (500 requests)',
    value: b.storeCallsPerRequest.toFixed(2),
    baseline: '-',
    ratio: '-',
    target: b.storeCallsPerRequest === 1 ? 'one batch: met' : 'one batch: missed',
  });
}

// (g) the same requests with the mapping in Bigtable (Google's emulator, its own process).
if (parts.has('g')) {
  note('(g) profile with MAPPING_STORE=bigtable beside snapshot mode, same data');
  const g = await benchBigtableRequests(demo, demoData, samples.linked, seconds, [32, 64]);
  g.bigtable.forEach((f, i) => {
    const s = g.snapshot[i] as LoadFigures;
    rows.push({
      part: 'g',
      figure: `profile, Bigtable mapping, ${f.connections} connections: req/s (p50 / p99 ms)`,
      value: `${fmt(f.requestsPerSec)} (${f.p50Ms} / ${f.p99Ms})${f.errors + f.non2xx > 0 ? ` ${f.errors + f.non2xx} errors` : ''}`,
      baseline: `${fmt(s.requestsPerSec)} (${s.p50Ms} / ${s.p99Ms}) snapshot mode`,
      ratio: `${((f.requestsPerSec / s.requestsPerSec) * 100).toFixed(0)}% of snapshot mode`,
      target: g.sameAnswer ? 'same answer: met' : 'same answer: MISSED',
    });
  });
}

demoData = undefined;

// (h) syncMapping throughput and memory, per size.
const syncs = [];
for (const ids of parts.has('h') ? syncSizes : []) {
  note(`(h) syncMapping, ${fmt(ids)} ids`);
  syncs.push(await benchSync(ids));
}
throughputRows('h', 'syncMapping', syncs);
// (h) the same sync's shards spread over shard-worker processes (the queue played by the bench).
const spread = [];
for (const workers of parts.has('h') ? syncWorkers : []) {
  const ids = syncSizes[0] ?? 1_000_000;
  note(`(h) syncMapping, ${fmt(ids)} ids, ${workers} shard worker(s)`);
  spread.push(await benchWorkers(ids, workers, Math.ceil(ids / 3 / 16)));
}
for (const w of spread) {
  const one = spread[0];
  rows.push({
    part: 'h',
    figure: `syncMapping, ${fmt(w.ids)} ids in ${w.shards} shards, ${w.workers} worker process(es): ids/s`,
    value: fmt(w.idsPerSecond),
    baseline: one && w !== one ? `${fmt(one.idsPerSecond)} with 1 worker` : '-',
    ratio: one && w !== one ? `x${(w.idsPerSecond / one.idsPerSecond).toFixed(2)}` : '-',
    target: 'the mechanism (2 shared cores: emulator, BigQuery server and workers compete)',
  });
}

// (c) and (d): mapping load and the mapping job, per size.
let coldStartDir: string | undefined;
for (const ids of parts.has('c') || parts.has('e') || parts.has('f') ? sizes : []) {
  const dir = await writeMappingSnapshot(ids);
  if (ids === 1_000_000 || coldStartDir === undefined) coldStartDir = dir;
  if (parts.has('f')) {
    note(`(f) mapping refresh memory, ${fmt(ids)} ids`);
    const f = await benchRefreshMemory(ids, dir);
    const documented = MEMORY_FIGURES.refreshBytesPerId;
    rows.push({
      part: 'f',
      figure: `mapping refresh, ${fmt(ids)} ids: peak RSS bytes per id (old + new)`,
      value: `${fmt(f.refreshPeakBytesPerId, 1)} (${fmt((f.refreshPeakBytesPerId * ids) / MB)} MB)`,
      baseline: `${fmt(f.oldBytesPerId, 1)} old index only; ${fmt(f.indexBytesPerId, 1)} manifest estimate`,
      ratio: `x${(f.refreshPeakBytesPerId / f.indexBytesPerId).toFixed(2)} of one index`,
      target: `<= ${documented} (deploy.sh): ${f.refreshPeakBytesPerId <= documented ? 'met' : 'missed'}`,
    });
  }
  if (!parts.has('c') && !parts.has('e')) continue;
  note(`(c) mapping load, ${fmt(ids)} ids`);
  const c = await benchMappingLoad(ids, dir);
  const faster = c.naive.ms / c.compact.ms;
  const smaller = c.naive.bytesPerId / c.compact.bytesPerId;
  rows.push({
    part: 'c',
    figure: `mapping load, ${fmt(ids)} ids: ms`,
    value: fmt(c.compact.ms),
    baseline: `${fmt(c.naive.ms)} (naive Map)`,
    ratio: `${faster.toFixed(2)}x faster`,
    target: `>= 2x${ids === 1_000_000 ? ', < 1 s' : ''}: ${faster >= 2 && (ids !== 1_000_000 || c.compact.ms < 1000) ? 'met' : 'missed'}`,
  });
  rows.push({
    part: 'c',
    figure: `mapping load, ${fmt(ids)} ids: bytes per id`,
    value: fmt(c.compact.bytesPerId, 1),
    baseline: `${fmt(c.naive.bytesPerId, 1)} (naive Map)`,
    ratio: `${smaller.toFixed(2)}x smaller`,
    target: `>= 4x: ${smaller >= 4 ? 'met' : 'missed'}`,
  });
}
const jobs = [];
for (const ids of parts.has('d') ? sizes : []) {
  note(`(d) mapping job, ${fmt(ids)} ids`);
  jobs.push(await benchMappingJob(ids));
}
throughputRows('d', 'mapping job', jobs);

// (e) cold start with the 1M-id mapping against the ceiling function's cold start.
if (coldStartDir && parts.has('e')) {
  note('(e) cold start');
  const store = new LocalSnapshotStore(coldStartDir);
  await publishSnapshot(store, catalogCodec, Readable.from([{ id: '1', name: 'one' }]), {
    source: {},
    minRowsRatio: 0,
  });
  const [firstId, firstType] = benchPerson(0)[1] ?? ['', ''];
  await writeProfilesFile(join(coldStartDir, 'profiles.ndjson.gz'), [
    { set: firstType, key: firstId, bins: { segments: [1] } },
  ]);
  const profileMs = await coldStart(
    'profile',
    {
      SNAPSHOT_URI: `file:${coldStartDir}`,
      EMBEDDED_PROFILES_PATH: join(coldStartDir, 'profiles.ndjson.gz'),
    },
    `/?id=${firstId}`,
  );
  const ceilingMs = await coldStart(
    'fixed',
    { FIXED_BODY_PATH: a.answer.bodyPath, FIXED_HEADERS: '{}' },
    '/',
    new URL('./fixed-json-function.mjs', import.meta.url).pathname,
  );
  rows.push({
    part: 'e',
    figure: `cold start to first 200, ${fmt(sizes.includes(1_000_000) ? 1_000_000 : (sizes[0] ?? 0))}-id mapping: ms`,
    value: fmt(profileMs),
    baseline: `${fmt(ceilingMs)} (ceiling function)`,
    ratio: `+${fmt(profileMs - ceilingMs)} ms`,
    target: '-',
  });
}

const header: Row = {
  part: 'part',
  figure: 'figure',
  value: 'value',
  baseline: 'baseline (same run)',
  ratio: 'ratio',
  target: 'target',
};
const keys = Object.keys(header) as (keyof Row)[];
const widths = keys.map((k) => Math.max(...[header, ...rows].map((r) => r[k].length)));
const line = (r: Row) => `| ${keys.map((k, i) => r[k].padEnd(widths[i] ?? 0)).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));
