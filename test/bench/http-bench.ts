// Throughput of the profile function through functions-framework against its ceiling: a
// functions-framework function answering the same JSON body with the same headers.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Aerospike from 'aerospike';
import type { EmbeddedProfileRecord } from '../../shared/profiles/embedded-profile-store.js';
import { startChildServer } from './child-server.js';
import { type FunctionProcess, startFunction } from './function-process.js';
import { type LoadFigures, load, loadRun, type MixFigures } from './http-load.js';

/** Where the demo data for the HTTP benchmarks lives. */
export interface DemoPaths {
  readonly snapshotDir: string;
  readonly profilesPath: string;
}

/** A profile answer captured to serve as the ceiling's fixed body. */
export interface CapturedAnswer {
  readonly bodyPath: string;
  readonly headers: Record<string, string>;
  readonly bytes: number;
}

const CONNECTIONS = [32, 64] as const;

async function loadAll(url: string, seconds: number): Promise<LoadFigures[]> {
  const figures: LoadFigures[] = [];
  for (const connections of CONNECTIONS) figures.push(await load(url, connections, seconds));
  return figures;
}

/** Fetches `url` once and keeps its body and headers, for the ceiling function. */
async function capture(url: string, dir: string): Promise<CapturedAnswer> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`profile answered ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  const bodyPath = join(dir, 'fixed-body.json');
  await writeFile(bodyPath, body);
  const headers: Record<string, string> = {};
  for (const [name, value] of res.headers) {
    if (!['content-length', 'date', 'connection', 'keep-alive'].includes(name))
      headers[name] = value;
  }
  return { bodyPath, headers, bytes: body.length };
}

async function withFunction<T>(
  fn: Promise<FunctionProcess>,
  work: (f: FunctionProcess) => Promise<T>,
): Promise<T> {
  const f = await fn;
  try {
    return await work(f);
  } finally {
    await f.stop();
  }
}

/** (a) The profile function on the embedded store, and the ceiling with its answer. */
export async function benchEmbedded(demo: DemoPaths, id: string, dir: string, seconds: number) {
  const env = {
    SNAPSHOT_URI: `file:${demo.snapshotDir}`,
    EMBEDDED_PROFILES_PATH: demo.profilesPath,
  };
  let answer: CapturedAnswer | undefined;
  const profile = await withFunction(startFunction('profile', env), async (f) => {
    answer = await capture(`${f.url}/?id=${id}`, dir);
    return loadAll(`${f.url}/?id=${id}`, seconds);
  });
  if (!answer) throw new Error('no answer captured');
  const ceiling = await benchCeiling(answer, seconds);
  return { profile, ceiling, answer };
}

/** Figures of one side of an alternating comparison, over all its rounds. */
export interface RoundsFigures {
  /** Mean over the rounds. */
  readonly requestsPerSec: number;
  /** Median over the rounds. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly bytesPerAnswer: number;
  /** The server's CPU time per request over all rounds, in microseconds. */
  readonly cpuUsPerRequest: number;
}

/**
 * How many alternating rounds a mix comparison runs; each side gets `2 * seconds / rounds` per
 * round (with the default 8 s: 2 s), the same total as four rounds of 4 s, in more, shorter
 * rounds: each round's two runs are closer in time, so a burst of noise on this shared machine
 * spoils fewer ratios, and the median has more of them.
 */
const MIX_ROUNDS = Number(process.env.BENCH_MIX_ROUNDS ?? 8);

/**
 * The profile function on a mix of ids (every demo profile, in a shuffled order), against the
 * ceiling serving a fixed body of the mix's average answer size. Both servers stay up and the
 * load alternates between them in rounds with the same request paths: on a shared machine a
 * burst of noise then hits both sides alike, and the ratio is the median of the rounds' ratios.
 */
export async function benchMix(
  demo: DemoPaths,
  ids: readonly string[],
  dir: string,
  seconds: number,
  connections = 32,
) {
  const paths = ids.map((id) => `/?id=${encodeURIComponent(id)}`);
  return withFunction(
    startFunction('profile', {
      SNAPSHOT_URI: `file:${demo.snapshotDir}`,
      EMBEDDED_PROFILES_PATH: demo.profilesPath,
    }),
    async (profile) => {
      const warm = await load(`${profile.url}/`, connections, 1, paths);
      const bodyPath = join(dir, 'mix-body.json');
      // A JSON body of the mix's average size, for the ceiling.
      const size = Math.max(2, Math.round(warm.bytesPerAnswer));
      await writeFile(bodyPath, `{"x":"${'a'.repeat(Math.max(0, size - 8))}"}`);
      const ceilingFunction = startFunction(
        'fixed',
        {
          FIXED_BODY_PATH: bodyPath,
          FIXED_HEADERS: JSON.stringify({ 'content-type': 'application/json; charset=utf-8' }),
        },
        new URL('./fixed-json-function.mjs', import.meta.url).pathname,
      );
      return withFunction(ceilingFunction, async (ceiling) => {
        // The same request paths for both (the ceiling ignores them): the load generator then
        // does the same work for both, and only the servers differ.
        await load(`${ceiling.url}/`, connections, 1, paths);
        const compared = await inRounds(
          { f: profile, paths },
          { f: ceiling, paths },
          connections,
          seconds,
        );
        const { first, second, ratio, ratios } = compared;
        return { profile: first, ceiling: second, ratio, ratios };
      });
    },
  );
}

/** One side of an alternating comparison: a server and the request paths it is driven with. */
export interface Side {
  readonly f: FunctionProcess;
  readonly paths: readonly string[];
}

/**
 * Loads `first` and `second` in MIX_ROUNDS alternating rounds (each first in every other round),
 * `2 * seconds / MIX_ROUNDS` seconds per side per round: the figures over all rounds per side,
 * each round's ratio of first to second in req/s, and their median.
 */
export async function inRounds(first: Side, second: Side, connections: number, seconds: number) {
  const runs: { first: MeasuredRun; second: MeasuredRun }[] = [];
  const perRound = Math.max(1, (2 * seconds) / MIX_ROUNDS);
  const measure = ({ f, paths }: Side) => measuredRun(f, `${f.url}/`, connections, perRound, paths);
  for (let round = 0; round < MIX_ROUNDS; round++) {
    // Each side goes first in every other round: neither gains from its place in a pair.
    if (round % 2 === 0) {
      const firstRun = await measure(first);
      runs.push({ first: firstRun, second: await measure(second) });
    } else {
      const secondRun = await measure(second);
      runs.push({ first: await measure(first), second: secondRun });
    }
  }
  const ratios = runs.map((r) => r.first.requestsPerSec / r.second.requestsPerSec);
  const cpuPerRequest = (run: MeasuredRun) => run.cpuMs / Math.max(1, run.requests);
  // Second's CPU per request over first's: 1 when first costs its server as much per request.
  const cpuRatios = runs.map((r) => cpuPerRequest(r.second) / cpuPerRequest(r.first));
  return {
    first: overRounds(runs.map((r) => r.first)),
    second: overRounds(runs.map((r) => r.second)),
    ratio: median(ratios),
    ratios,
    cpuRatio: median(cpuRatios),
    cpuRatios,
  };
}

/** The fields of the catalog that part (l) selects from. */
export const SELECTION_FIELDS = [
  'id',
  'name',
  'type',
  'size',
  'provider',
  'cpm',
  'reach',
  'updated',
] as const;

/**
 * (l) The mix of ids on a large catalog, each request with the same `segmentFields` selection
 * against each with a random one of the 255 selections of SELECTION_FIELDS, on one server, in
 * alternating rounds: what varying selections cost beside a fixed one.
 */
export async function benchSelections(
  demo: DemoPaths,
  ids: readonly string[],
  seconds: number,
  connections = 32,
) {
  const singles = ids.map((id) => `/?id=${encodeURIComponent(id)}`);
  const fixed = singles.map((path) => `${path}&segmentFields=id,name,type`);
  // A fixed pseudo-random sequence of selections: every run asks the same.
  let seed = 1;
  const random = singles.map((path) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    const mask = 1 + (seed % 255);
    const chosen = SELECTION_FIELDS.filter((_, bit) => mask & (1 << bit));
    return `${path}&segmentFields=${chosen.join(',')}`;
  });
  return withFunction(
    startFunction('profile', {
      SNAPSHOT_URI: `file:${demo.snapshotDir}`,
      EMBEDDED_PROFILES_PATH: demo.profilesPath,
    }),
    async (f) => {
      await load(`${f.url}/`, connections, 1, fixed);
      await load(`${f.url}/`, connections, 1, random);
      const compared = await inRounds(
        { f, paths: random },
        { f, paths: fixed },
        connections,
        seconds,
      );
      const { first, second, ratio, ratios, cpuRatio } = compared;
      return { random: first, fixed: second, ratio, ratios, cpuRatio };
    },
  );
}

type MeasuredRun = MixFigures & { readonly cpuMs: number; readonly requests: number };

async function measuredRun(
  f: FunctionProcess,
  url: string,
  connections: number,
  seconds: number,
  paths: readonly string[],
): Promise<MeasuredRun> {
  const before = f.cpuMs();
  const started = performance.now();
  const figures = await loadRun(url, connections, seconds, paths);
  const requests = (figures.requestsPerSec * (performance.now() - started)) / 1000;
  return { ...figures, cpuMs: f.cpuMs() - before, requests };
}

function overRounds(runs: readonly MeasuredRun[]): RoundsFigures {
  const sum = (pick: (r: MeasuredRun) => number) => runs.reduce((s, r) => s + pick(r), 0);
  return {
    requestsPerSec: sum((r) => r.requestsPerSec) / runs.length,
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    errors: sum((r) => r.errors),
    non2xx: sum((r) => r.non2xx),
    bytesPerAnswer: sum((r) => r.bytesPerAnswer) / runs.length,
    cpuUsPerRequest: (sum((r) => r.cpuMs) * 1000) / sum((r) => r.requests),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * (j) One batch per request, always the mix's first 100 ids, against single GETs cycling through
 * the whole mix, and (k) `segmentFields=id,name` against full answers, on the same mix. Returns
 * figures per variant.
 */
export async function benchVariants(
  demo: DemoPaths,
  ids: readonly string[],
  seconds: number,
  connections = 32,
) {
  return withFunction(
    startFunction('profile', {
      SNAPSHOT_URI: `file:${demo.snapshotDir}`,
      EMBEDDED_PROFILES_PATH: demo.profilesPath,
    }),
    async (f) => {
      const singles = ids.map((id) => `/?id=${encodeURIComponent(id)}`);
      const narrow = singles.map((path) => `${path}&segmentFields=id,name`);
      const batchBody = JSON.stringify({ ids: ids.slice(0, 100).map((id) => ({ id })) });
      const full = await load(`${f.url}/`, connections, seconds, singles);
      const small = await load(`${f.url}/`, connections, seconds, narrow);
      const batch = await load(
        `${f.url}/profiles:batchGet`,
        connections,
        seconds,
        ['/profiles:batchGet'],
        'POST',
        batchBody,
      );
      return { full, small, batch };
    },
  );
}

/** The ceiling: the captured answer from a function that does nothing else. */
export async function benchCeiling(
  answer: CapturedAnswer,
  seconds: number,
): Promise<LoadFigures[]> {
  const env = { FIXED_BODY_PATH: answer.bodyPath, FIXED_HEADERS: JSON.stringify(answer.headers) };
  const source = new URL('./fixed-json-function.mjs', import.meta.url).pathname;
  return withFunction(startFunction('fixed', env, source), (f) => loadAll(`${f.url}/`, seconds));
}

/**
 * (b) The profile function on the Aerospike store against the Aerospike test server (its own
 * process), seeded with the demo profiles. Also counts the server's batch reads per request.
 */
export async function benchAerospike(
  demo: DemoPaths,
  profiles: EmbeddedProfileRecord[],
  id: string,
  expectedBody: Buffer,
  seconds: number,
) {
  const server = await startChildServer<{ host: string; port: number }>('aerospike');
  try {
    const client = await Aerospike.connect({
      hosts: [{ addr: server.info.host, port: server.info.port }],
      log: { level: Aerospike.log.OFF },
    });
    // Batches of 50: the client allows 100 async connections per node by default.
    for (let i = 0; i < profiles.length; i += 50) {
      await Promise.all(
        profiles
          .slice(i, i + 50)
          .map((p) =>
            client.put(
              new Aerospike.Key('profiles', p.set, p.key),
              p.bins as Record<string, never>,
            ),
          ),
      );
    }
    client.close(false);
    const env = {
      SNAPSHOT_URI: `file:${demo.snapshotDir}`,
      PROFILE_STORE: 'aerospike',
      AEROSPIKE_HOSTS: `${server.info.host}:${server.info.port}`,
    };
    return await withFunction(startFunction('profile', env), async (f) => {
      const first = Buffer.from(await (await fetch(`${f.url}/?id=${id}`)).arrayBuffer());
      if (!first.equals(expectedBody)) throw new Error('the Aerospike store answered differently');
      const storeCalls = async () => {
        const s = JSON.parse(await server.ask('stats')) as { batchReads: number; reads: number };
        return s.batchReads + s.reads;
      };
      const before = await storeCalls();
      const REQUESTS = 500;
      for (let i = 0; i < REQUESTS; i++) await (await fetch(`${f.url}/?id=${id}`)).arrayBuffer();
      const storeCallsPerRequest = ((await storeCalls()) - before) / REQUESTS;
      const figures = await loadAll(`${f.url}/?id=${id}`, seconds);
      return { figures, storeCallsPerRequest };
    });
  } finally {
    await server.stop();
  }
}
