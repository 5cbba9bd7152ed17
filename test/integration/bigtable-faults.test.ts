import type { Table } from '@google-cloud/bigtable';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileRuntime, type ProfileRuntime } from '../../functions/profile/runtime.js';
import { BackendUnavailableError } from '../../shared/errors.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { silentLogger } from '../../shared/logger.js';
import type { VersionSource } from '../../shared/mapping/bigquery-version-source.js';
import { VERSION_LEASE_MS } from '../../shared/mapping/bigtable-layout.js';
import { BigtableMappingStore, readVersion } from '../../shared/mapping/bigtable-mapping-store.js';
import { readPlan } from '../../shared/mapping/sync-plan.js';
import type { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import type { BigQueryEmulator } from '../emulators/bigquery-emulator.js';
import type { BigtableEmulator } from '../emulators/bigtable-emulator.js';
import { BIGTABLE, bigtableEnv, createMappingTable, dumpCells } from '../helpers/bigtable-table.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/eventually.js';
import { type GraphStack, startGraphStack } from '../helpers/graph-stack.js';
import { httpEvent, resultJson } from '../helpers/http-event.js';
import type { PartitionedMapping } from '../helpers/partitioned-mapping.js';
import { graphSource, testSyncJob } from '../helpers/sync-job.js';

// Bigtable mode when things go wrong: the emulator silent or gone, a sync failing halfway,
// BigQuery failing. Google's emulator throughout; no hand-written Bigtable.
const LAST = new Date().toISOString().slice(0, 10);
const WINDOW_DAYS = 2;
const registry = defaultIdTypeRegistry();

let stack: GraphStack;
let bq: BigQueryEmulator;
let aerospike: AerospikeEmulator;
let bigtable: BigtableEmulator;
let graph: PartitionedMapping;
let dir: string;
let profile: ProfileRuntime;

function syncInto(table: Table, source?: VersionSource, log = silentLogger) {
  return testSyncJob({
    bq,
    table,
    windowDays: WINDOW_DAYS,
    source,
    log,
    config: { SYNC_SHARD_PERSONS: 30 },
    now: () => Date.parse(`${LAST}T12:00:00Z`),
  });
}

async function ask(query: string) {
  const started = Date.now();
  const res = await profile.handler(httpEvent(`/?${query}`), {});
  return {
    status: res.statusCode,
    headers: res.headers,
    body: resultJson(res),
    ms: Date.now() - started,
  };
}

beforeAll(async () => {
  stack = await startGraphStack({ seed: 11, persons: 150, days: 3, last: LAST });
  ({ bq, aerospike, bigtable, graph, dir } = stack);
  await syncInto(await createMappingTable('mapping', WINDOW_DAYS))();
  profile = createProfileRuntime(
    loadProfileConfig({
      SNAPSHOT_URI: `file:${dir}`,
      PROFILE_STORE: 'aerospike',
      AEROSPIKE_HOSTS: `${aerospike.host}:${aerospike.port}`,
      ...bigtableEnv('mapping'),
      MAPPING_WINDOW_DAYS: String(WINDOW_DAYS),
      REQUEST_BUDGET_MS: '500',
      REFRESH_INTERVAL_SECS: '1',
      REFRESH_RETRY_MAX_SECS: '1',
    }),
    silentLogger,
  );
  await profile.deps.mapping.ready(5_000);
}, 60_000);

afterAll(async () => {
  await profile?.deps.store.close();
  await profile?.deps.mapping.close();
  await stack?.close();
});

describe('the profile function on Bigtable', () => {
  it('reads at most two rows per request, then makes one profile-store batch read', async () => {
    const calls: string[][] = [];
    const table = await createMappingTable('counted', WINDOW_DAYS);
    await syncInto(table)();
    const counted = new Proxy(table, {
      get(target, prop, receiver) {
        if (prop === 'getRows') {
          return (options: { keys?: string[] }) => {
            calls.push(options.keys ?? []);
            return target.getRows(options);
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    let clock = Date.now();
    const store = new BigtableMappingStore(
      {
        ...BIGTABLE,
        tableId: 'counted',
        windowDays: WINDOW_DAYS,
        refreshIntervalMs: 60_000,
        retryMaxMs: 1_000,
        maxStalenessSecs: 172_800,
        now: () => clock,
      },
      counted,
    );
    await store.ready(5_000);
    calls.length = 0;
    const found = await store.find([registry.candidates(graph.data.samples.linked)], 50, 1_000);
    expect(found.matches[0]?.linkedTotal).toBeGreaterThan(0);
    // A linked id: its id rows in one read, then its person's row.
    expect(calls.length).toBe(2);
    // A batch of many ids still reads two rows sets: all id rows, then all person rows.
    calls.length = 0;
    const many = graph.data.persons.slice(0, 40).map((p) => registry.candidates(p[0]?.id ?? ''));
    const batch = await store.find(many, 50, 2_000);
    expect(batch.matches.filter((m) => m !== undefined).length).toBeGreaterThan(10);
    expect(calls.length).toBe(2);
    await aerospike.resetStats();
    await ask(`id=${graph.data.samples.linked}`);
    const stats = await aerospike.stats();
    expect(stats.batchReads + stats.reads).toBe(1);
    // An instance that has not read the version for longer than the lease (idle, or its
    // refreshes failing) reads it before it answers: the sync relies on that bound.
    clock += VERSION_LEASE_MS + 1;
    calls.length = 0;
    await store.find([registry.candidates(graph.data.samples.linked)], 50, 1_000);
    expect(calls).toEqual([['_meta'], expect.any(Array), expect.any(Array)]);
    // Within the lease, the lookup does not wait for it.
    calls.length = 0;
    await store.find([registry.candidates(graph.data.samples.linked)], 50, 1_000);
    expect(calls.length).toBe(2);
    await store.close();
  });

  it('answers 503 mapping_unavailable within the budget while Bigtable is silent, then recovers', async () => {
    const id = graph.data.samples.linked;
    expect((await ask(`id=${id}`)).status).toBe(200);
    bigtable.pause();
    try {
      const down = await ask(`id=${id}`);
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ error: { code: 'mapping_unavailable' } });
      expect(down.headers['retry-after']).toBe('5');
      expect(down.ms).toBeLessThan(1_500);
      const health = await profile.handler(httpEvent('/health'), {});
      expect(health.statusCode).toBe(503);
      expect(JSON.parse(String(health.body))).toMatchObject({ bigtable: { reachable: false } });
    } finally {
      bigtable.resume();
    }
    await eventually(async () => expect((await ask(`id=${id}`)).status).toBe(200));
  });

  it('answers 503 at once while Bigtable is gone, and recovers once it is back and synced', async () => {
    const id = graph.data.samples.linked;
    await bigtable.stop();
    const down = await ask(`id=${id}`);
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ error: { code: 'mapping_unavailable' } });
    expect(down.ms).toBeLessThan(1_500);
    // The emulator keeps data in memory only: it comes back empty and is synced again.
    await bigtable.restart();
    await syncInto(await createMappingTable('mapping', WINDOW_DAYS))();
    await eventually(async () => expect((await ask(`id=${id}`)).status).toBe(200), 10_000);
  });
});

describe('syncMapping when things fail', () => {
  it('keeps the shards that landed when one fails; the next run lands the rest, cells identical to an uninterrupted sync', async () => {
    const whole = await createMappingTable('whole', WINDOW_DAYS);
    await syncInto(whole)();

    const broken = await createMappingTable('interrupted', WINDOW_DAYS);
    // A source whose reads die from the third shard on, as BigQuery failing would.
    const real = graphSource(bq);
    let failing = true;
    const dying: VersionSource = {
      partitions: (from, to, signal) => real.partitions(from, to, signal),
      runVersionQuery: (partition, days, signal) => real.runVersionQuery(partition, days, signal),
      async *pages(result, from, to, signal) {
        if (failing && from >= 60) throw new BackendUnavailableError('bigquery', 'killed');
        yield* real.pages(result, from, to, signal);
      },
    };
    const { log, lines } = captureLogger();
    await expect(syncInto(broken, dying, log)()).rejects.toThrow(/killed/);
    // Nothing is visible: no version until every shard has landed.
    expect(await readVersion(broken, 5_000)).toBeUndefined();
    const plan = await readPlan(broken);
    expect([...(plan?.shards ?? [])].filter(([, s]) => s.done).map(([k]) => k)).toEqual([0, 1]);
    // The failed shard is on record, with the error.
    expect(plan?.shards.get(2)?.failure).toMatchObject({
      attempts: 1,
      error: expect.stringMatching(/killed/),
    });
    // The run's log line says it failed.
    const failed = lines.find((line) => line.severity === 'ERROR');
    expect(failed?.message).toMatch(/^syncMapping: failed: .*killed/);
    expect(failed?.summary).toMatchObject({ outcome: 'failed', version: null });

    failing = false;
    const resumed = await syncInto(broken, dying)();
    expect(resumed).toMatchObject({ outcome: 'synced', version: LAST });
    // Only the shards left were written again.
    expect(resumed.persons).toBeLessThan(plan?.plan.rows ?? 0);
    expect(await dumpCells(broken, ['l'])).toEqual(await dumpCells(whole, ['l']));
  });

  it('leaves the table as it was when BigQuery fails', async () => {
    const table = await createMappingTable('bq-failing', WINDOW_DAYS);
    bq.inject({ on: 'page', page: 2, status: 503, times: 100 });
    try {
      await expect(syncInto(table)()).rejects.toThrow(BackendUnavailableError);
    } finally {
      bq.clearFaults();
    }
    expect(await readVersion(table, 5_000)).toBeUndefined();
    expect(await syncInto(table)()).toMatchObject({ outcome: 'synced', version: LAST });
  });
});
