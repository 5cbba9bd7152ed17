import type { Table } from '@google-cloud/bigtable';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProfileRuntime } from '../../functions/profile/runtime.js';
import type { SyncSummary } from '../../functions/sync-mapping/handler.js';
import type { ScheduledEvent } from '../../shared/jobs/scheduled-job.js';
import { shiftDays } from '../../shared/mapping/bigtable-layout.js';
import type { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import type { BigQueryEmulator } from '../emulators/bigquery-emulator.js';
import { apiSchemaProblems } from '../helpers/api-schema-check.js';
import { bigtableEnv, createMappingTable } from '../helpers/bigtable-table.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/eventually.js';
import {
  type GraphStack,
  graphRuntime,
  publishMappingSnapshot,
  startGraphStack,
} from '../helpers/graph-stack.js';
import { httpEvent, resultJson, resultText } from '../helpers/http-event.js';
import type { PartitionedMapping } from '../helpers/partitioned-mapping.js';
import { testSyncJob } from '../helpers/sync-job.js';

// The full identity graph in both modes, same data: BigQuery (several partitions) -> snapshotMapping
// -> snapshot in memory, and BigQuery -> syncMapping -> Google's Bigtable emulator. The profile
// function answers every id the same way, byte for byte, on the same Aerospike records.
const WINDOW_DAYS = 3;
/** The graph's last partition: today (the GC rule's max age counts from the cells' dates). */
const LAST = new Date().toISOString().slice(0, 10);

let stack: GraphStack;
let bq: BigQueryEmulator;
let aerospike: AerospikeEmulator;
let table: Table;
let dir: string;
let graph: PartitionedMapping;
let snapshotMode: ProfileRuntime;
let bigtableMode: ProfileRuntime;
let sync: (event?: Partial<ScheduledEvent>) => Promise<SyncSummary>;

/** A profile runtime on this stack; `env` picks the mapping store. */
function runtime(env: Record<string, string>): ProfileRuntime {
  return graphRuntime({ aerospike, dir }, WINDOW_DAYS, env);
}

async function ask(mode: ProfileRuntime, query: string) {
  const res = await mode.handler(httpEvent(`/?${query}`), {});
  return {
    status: res.statusCode,
    headers: res.headers,
    body: resultText(res),
  };
}

/** Two ids of one person whose every row lies in the graph's first partition. */
function firstDayOnlyPerson(): [string, string] {
  const first = graph.partitions[0];
  const later = new Set<string>();
  const byPerson = new Map<string, string[]>();
  for (const [partition, person, id] of graph.rows) {
    if (!person || !id) continue;
    if (partition !== first) later.add(id);
    else byPerson.set(person, [...(byPerson.get(person) ?? []), id]);
  }
  for (const ids of byPerson.values()) {
    const [id, mate, ...rest] = new Set(ids);
    if (id && mate && ![id, mate, ...rest].some((i) => later.has(i))) return [id, mate];
  }
  throw new Error('the graph has no person seen on its first day only');
}

beforeAll(async () => {
  stack = await startGraphStack({ seed: 7, persons: 700, days: 5, last: LAST });
  ({ bq, aerospike, graph, dir } = stack);

  // Snapshot mode: the mapping job over the same window, published to the local snapshot store
  // that holds the catalog.
  const published = await publishMappingSnapshot({ bq, dir, windowDays: WINDOW_DAYS });
  expect(published).toMatchObject({
    outcome: 'published',
    source: { firstPartition: shiftDays(LAST, -2), lastPartition: LAST },
  });

  // Bigtable mode: the sync job writes the same window to the emulator, in shards of 100 persons.
  table = await createMappingTable('identity-mapping', WINDOW_DAYS);
  sync = testSyncJob({
    bq,
    table,
    windowDays: WINDOW_DAYS,
    config: { SYNC_INLINE_WORKERS: 2 },
    now: () => Date.parse(`${LAST}T12:00:00Z`),
  });

  snapshotMode = runtime({});
  bigtableMode = runtime(bigtableEnv('identity-mapping'));
}, 60_000);

afterAll(async () => {
  await Promise.all([snapshotMode?.deps.store.close(), bigtableMode?.deps.store.close()]);
  await bigtableMode?.deps.mapping.close();
  await stack?.close();
});

describe('syncMapping', () => {
  it('writes the window ending at the latest partition as one version, in shards', async () => {
    const first = await sync();
    expect(first).toMatchObject({
      outcome: 'synced',
      previousVersion: null,
      version: LAST,
      plan: { partition: LAST, failedShards: [] },
    });
    // 700 persons in shards of 100: several shards, all landed.
    expect(first.plan?.shards).toBeGreaterThan(5);
    expect(first.plan?.done).toBe(first.plan?.shards);
    expect(first.ids).toBeGreaterThan(1_000);
    expect(await sync()).toMatchObject({ outcome: 'unchanged', version: LAST });
  });

  it('writes the window again as a new version on {"resync": true}, unseen by reads until it lands', async () => {
    const resync = await sync({ resync: true });
    expect(resync).toMatchObject({ outcome: 'synced', previousVersion: LAST, version: LAST });
    // Links of the graph's first days lie outside the window: reads must not see them. A person
    // seen on the first day only: its ids are answered without each other, as in snapshot mode.
    const [id, mate] = firstDayOnlyPerson();
    await bigtableMode.deps.mapping.ready(5_000);
    const query = `id=${encodeURIComponent(id)}`;
    const [a, b] = await Promise.all([ask(snapshotMode, query), ask(bigtableMode, query)]);
    expect({ status: b.status, body: b.body }).toEqual({ status: a.status, body: a.body });
    expect(b.body).not.toContain(mate);
  });
});

describe('the profile function in both mapping modes', () => {
  it('answers every id byte for byte the same, in snapshot mode and on Bigtable', async () => {
    await bigtableMode.deps.mapping.ready(5_000);
    const sample = [
      ...graph.ids,
      { id: 'ffffffff-ffff-4fff-8fff-ffffffffffff', typeCode: '222222' },
      { id: '99999999999', typeCode: '444444' },
    ];
    expect(sample.length).toBeGreaterThanOrEqual(1_000);
    const statuses = new Map<number, number>();
    let linked = 0;
    let truncated = 0;
    for (const { id } of sample) {
      const query = `id=${encodeURIComponent(id)}`;
      const [a, b] = await Promise.all([ask(snapshotMode, query), ask(bigtableMode, query)]);
      expect({ id, status: b.status, body: b.body }).toEqual({
        id,
        status: a.status,
        body: a.body,
      });
      for (const header of ['x-id-type', 'x-linked-ids-total', 'x-linked-ids-truncated']) {
        expect(b.headers[header]).toBe(a.headers[header]);
      }
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      if (Number(a.headers['x-linked-ids-total'] ?? 0) > 0) linked++;
      if (a.headers['x-linked-ids-truncated']) truncated++;
    }
    // The sample covers what matters: linked persons, the capped super-node, unknown ids.
    expect(linked).toBeGreaterThan(300);
    expect(truncated).toBeGreaterThan(0);
    expect(statuses.get(404)).toBeGreaterThan(0);
  });

  it('carries the last synced partition as the mapping version', async () => {
    const id = graph.data.samples.linked;
    const res = await ask(bigtableMode, `id=${id}`);
    expect(res.headers['x-mapping-version']).toBe(LAST);
  });

  it('reports the table and the last synced partition in health', async () => {
    const res = await bigtableMode.handler(httpEvent('/health'), {});
    const body = JSON.parse(String(res.body)) as Record<string, unknown>;
    expect(body).toMatchObject({
      bigtable: {
        table: 'projects/local-project/instances/profile-api/tables/identity-mapping',
        reachable: true,
        lastSyncedPartition: LAST,
        windowDays: WINDOW_DAYS,
      },
    });
    expect(body.snapshots).not.toHaveProperty('mapping');
    // As /openapi.json describes it.
    expect(apiSchemaProblems('Health', body)).toEqual([]);
  });
});

describe('a first sync with no partition within MAPPING_LOOKBACK_DAYS', () => {
  it('is refused, saying which partition is newest and which setting left it out, in its log line and in /health', async () => {
    // The clock a month past the graph's last partition, a new table: what a deploy whose
    // source stopped being written (or whose look-back is too short) meets.
    const today = shiftDays(LAST, 30);
    const first = await createMappingTable('first-sync', WINDOW_DAYS);
    const firstSync = (lookbackDays: number) => {
      const { log, lines } = captureLogger();
      const run = testSyncJob({
        bq,
        table: first,
        windowDays: WINDOW_DAYS,
        lookbackDays,
        log,
        now: () => Date.parse(`${today}T06:00:00Z`),
      });
      return { run: () => run(), lines };
    };
    const profile = runtime(bigtableEnv('first-sync'));
    // As the entry module starts an instance: first loads and the store's connect (/health
    // itself never connects to Aerospike).
    profile.warmUp();
    try {
      const short = firstSync(7);
      const refused = await short.run();
      expect(refused).toMatchObject({
        outcome: 'refused',
        version: null,
        firstSync: {
          earliestAccepted: shiftDays(today, -7),
          newestPartition: LAST,
          excludedBy: 'MAPPING_LOOKBACK_DAYS=7',
        },
      });
      expect(refused.reason).toContain(`the newest partition is ${LAST}, 30 days old`);
      expect(refused.reason).toContain('raise MAPPING_LOOKBACK_DAYS to 30 or more');
      const errors = short.lines.filter((l) => l.severity === 'ERROR');
      expect(errors.map((l) => l.message)).toEqual([`syncMapping: refused: ${refused.reason}`]);

      // The profile function: 503 to requests, and /health says why.
      const res = await profile.handler(httpEvent(`/?id=${graph.data.samples.linked}`), {});
      expect(res.statusCode).toBe(503);
      expect(resultJson(res)).toMatchObject({ error: { code: 'mapping_unavailable' } });
      const health = await profile.handler(httpEvent('/health'), {});
      expect(health.statusCode).toBe(503);
      expect(resultJson(health).bigtable).toMatchObject({
        lastSyncedPartition: null,
        lastError: 'NothingSyncedError',
        firstSync: {
          newestPartition: LAST,
          excludedBy: 'MAPPING_LOOKBACK_DAYS=7',
          reason: refused.reason,
        },
      });

      // With a look-back that reaches it, the window ending at that partition is synced and
      // health no longer carries the note.
      expect(await firstSync(30).run()).toMatchObject({ outcome: 'synced', version: LAST });
      // /health alone brings the instance round (no request needed): it retries the checkpoint
      // read, with back-off, as a request would.
      const after = await eventually(async () => {
        const res = await profile.handler(httpEvent('/health'), {});
        expect(res.statusCode).toBe(200);
        return resultJson(res);
      });
      expect(after.bigtable).toMatchObject({ lastSyncedPartition: LAST, firstSync: null });
    } finally {
      await profile.deps.store.close();
      await profile.deps.mapping.close();
    }
  });

  it('says so when the table has no partition in the year before either', async () => {
    const empty = await createMappingTable('first-sync-empty', WINDOW_DAYS);
    const run = testSyncJob({
      bq,
      table: empty,
      windowDays: WINDOW_DAYS,
      now: () => Date.parse(`${shiftDays(LAST, 400)}T06:00:00Z`),
    });
    const refused = await run();
    expect(refused).toMatchObject({
      outcome: 'refused',
      firstSync: { newestPartition: null, excludedBy: null },
    });
    expect(refused.reason).toContain('nor in the 366 days before: check MAPPING_TABLE');
  });
});
