import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { startTestServers, type TestServers } from '../tryout/test-servers.js';

// `npm run start:test-servers` in both mapping modes, as a newcomer runs it (the built code
// served by functions-framework on the production adapters, the jobs run once), on a day far
// from the one the test runs on: the whole run, the functions' processes included, has its clock
// 1,000 days ahead. Data dated from a fixed calendar day would be outside every look-back then.
const ROOT = new URL('../..', import.meta.url).pathname;
const BUILD = `${ROOT}.cache/start-test-servers-${process.pid}`;
const DAY_MS = 86_400_000;
const NOW = Date.now() + 1_000 * DAY_MS;
const TODAY = new Date(NOW).toISOString().slice(0, 10);

interface Answer {
  readonly id: string;
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | null>;
}

let running: TestServers | undefined;

beforeAll(async () => {
  // Its own build (what `npm run build` makes), so that no other test's build is rewritten
  // under the functions' feet.
  await promisify(execFile)(
    `${ROOT}node_modules/.bin/tsc`,
    ['-p', 'tsconfig.build.json', '--outDir', BUILD],
    { cwd: ROOT },
  );
}, 120_000);

afterAll(async () => {
  await running?.close();
  await rm(BUILD, { recursive: true, force: true });
});

/** Starts one mode, asks `ids` (or the data's own sample), stops it. */
async function run(mappingStore: 'snapshot' | 'bigtable', ids?: readonly string[]) {
  const ports = {
    profile: await freePort(),
    snapshotCatalog: await freePort(),
    mapping: await freePort(),
  };
  running = await startTestServers({
    mappingStore,
    ports,
    source: `${BUILD}/functions/index.js`,
    now: NOW,
    output: 'keep',
  });
  const servers = running;
  try {
    const { data } = servers;
    const asked = ids ?? [
      ...Object.values(data.samples),
      ...data.persons.filter((_, p) => p % 20 === 0).map((person) => person[0]?.id as string),
    ];
    const answers: Answer[] = [];
    for (const id of asked) {
      const res = await fetch(`${servers.profileUrl}/?id=${encodeURIComponent(id)}`);
      const headers: Record<string, string | null> = {};
      for (const name of [
        'x-id-type',
        'x-linked-ids-total',
        'x-linked-ids-truncated',
        'x-mapping-version',
      ]) {
        headers[name] = res.headers.get(name);
      }
      answers.push({ id, status: res.status, body: await res.text(), headers });
    }
    return { data, jobs: servers.jobs, answers, output: servers.output() };
  } finally {
    running = undefined;
    await servers.close();
  }
}

describe('npm run start:test-servers, 1,000 days from now', () => {
  it('serves linked answers on Bigtable identical to snapshot mode, from data dated that day', async () => {
    const snapshot = await run('snapshot');
    expect(snapshot.data.today).toBe(TODAY);
    const published = snapshot.jobs.find((j) => j.target === 'snapshotMapping');
    expect(published?.status).toBe(200);
    expect(JSON.parse(published?.body ?? '{}')).toMatchObject({
      outcome: 'published',
      source: { lastPartition: TODAY },
    });

    const bigtable = await run(
      'bigtable',
      snapshot.answers.map((a) => a.id),
    );
    const synced = bigtable.jobs.find((j) => j.target === 'syncMapping');
    expect(synced?.status, bigtable.output.slice(-2_000)).toBe(200);
    expect(JSON.parse(synced?.body ?? '{}')).toMatchObject({
      outcome: 'synced',
      version: TODAY,
    });

    // Same status, body and linked-id headers for every id; only the mapping version differs
    // by mode (a snapshot version, or the last synced partition: the data's day).
    const comparable = (answers: readonly Answer[]) =>
      answers.map(({ headers, ...rest }) => ({
        ...rest,
        headers: { ...headers, 'x-mapping-version': undefined },
      }));
    expect(comparable(bigtable.answers)).toEqual(comparable(snapshot.answers));
    const ok = bigtable.answers.filter((a) => a.status === 200);
    expect(ok.length).toBeGreaterThan(90);
    expect(new Set(ok.map((a) => a.headers['x-mapping-version']))).toEqual(new Set([TODAY]));
    // The sample has what the README's curls show: linked ids, and the capped super-node.
    const linked = ok.filter((a) => Number(a.headers['x-linked-ids-total']) > 0);
    expect(linked.length).toBeGreaterThan(50);
    expect(ok.some((a) => a.headers['x-linked-ids-truncated'] !== null)).toBe(true);
  }, 240_000);
});
