import { spawn } from 'node:child_process';
import type { GetRowsOptions, GetRowsResponse, Table } from '@google-cloud/bigtable';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileRuntime, type ProfileRuntime } from '../../functions/profile/runtime.js';
import { PLAN_MAX_AGE_MS, type SyncSummary } from '../../functions/sync-mapping/handler.js';
import { createShardWorkerHandler } from '../../functions/sync-mapping-shard/handler.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { silentLogger } from '../../shared/logger.js';
import {
  COUNT_QUALIFIER,
  LINKS_FAMILY,
  SETTLE_MS,
  shiftDays,
} from '../../shared/mapping/bigtable-layout.js';
import { BigtableMappingStore, readVersion } from '../../shared/mapping/bigtable-mapping-store.js';
import type { ShardMessage, ShardQueue } from '../../shared/mapping/shard-queue.js';
import { readPlan, shardRange } from '../../shared/mapping/sync-plan.js';
import type { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import type { BigQueryEmulator } from '../emulators/bigquery-emulator.js';
import {
  BIGTABLE,
  bigtableEnv,
  createMappingTable,
  dumpCells,
  throttledTable,
} from '../helpers/bigtable-table.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/eventually.js';
import {
  GRAPH_TABLE,
  type GraphStack,
  graphRuntime,
  publishMappingSnapshot,
  startGraphStack,
} from '../helpers/graph-stack.js';
import { httpEvent, resultText } from '../helpers/http-event.js';
import {
  MAPPING_TABLE_SCHEMA,
  type MappingTableRow,
  type PartitionedMapping,
} from '../helpers/partitioned-mapping.js';
import type { SyncChildSettings } from '../helpers/sync-child.js';
import { graphSource, syncUntilLanded, TEST_LIMITS, testSyncJob } from '../helpers/sync-job.js';
import { makeTempDir } from '../helpers/temp-dir.js';

// The sync at scale, on Google's Bigtable emulator and the BigQuery test server: versions that
// readers see whole or not at all, shards that land across runs, processes and workers.
const ROOT = new URL('../..', import.meta.url).pathname;
const WINDOW_DAYS = 3;
/** Version N+1: today's partition (cells are dated from it: the GC rule's age counts from today). */
const NEXT = new Date().toISOString().slice(0, 10);
/** Version N: yesterday's. */
const LAST = shiftDays(NEXT, -1);
const registry = defaultIdTypeRegistry();

let stack: GraphStack;
let bq: BigQueryEmulator;
let aerospike: AerospikeEmulator;
let graph: PartitionedMapping;
let dir: string;
let todayRows: MappingTableRow[];

/** A profile runtime on this stack; `env` picks the mapping store. */
function runtime(env: Record<string, string>): ProfileRuntime {
  return graphRuntime({ aerospike, dir }, WINDOW_DAYS, env);
}

/** What a caller sees of an answer: status, body and the mapping's headers. */
async function answer(mode: ProfileRuntime, id: string) {
  const res = await mode.handler(httpEvent(`/?id=${encodeURIComponent(id)}`), {});
  return {
    version: res.headers['x-mapping-version'],
    seen: JSON.stringify([
      res.statusCode,
      resultText(res),
      res.headers['x-id-type'],
      res.headers['x-linked-ids-total'],
      res.headers['x-linked-ids-truncated'],
    ]),
  };
}

/** snapshotMapping over the table as it is now, published to the stack's snapshot directory. */
async function publishSnapshot() {
  const published = await publishMappingSnapshot({ bq, dir, windowDays: WINDOW_DAYS });
  expect(published.outcome).toBe('published');
}

beforeAll(async () => {
  stack = await startGraphStack({ seed: 7, persons: 700, days: 5, last: NEXT });
  ({ bq, aerospike, graph, dir } = stack);
  // The table as it was yesterday: partitions up to N. Today's rows (N+1) come later.
  todayRows = graph.rows.filter(([partition]) => partition === NEXT).map((r) => [...r]);
  bq.createTable(
    GRAPH_TABLE,
    MAPPING_TABLE_SCHEMA,
    graph.rows.filter(([partition]) => partition !== NEXT).map((r) => [...r]),
  );
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

/** The table as it is today: every partition, N+1 included. */
function withTodaysRows() {
  bq.createTable(
    GRAPH_TABLE,
    MAPPING_TABLE_SCHEMA,
    graph.rows.map((r) => [...r]),
  );
}

describe('a version being written', () => {
  it('is never seen: a reader running through a sync, killed mid-shard and resumed, sees answers equal to snapshot mode at N or at N+1 only', async () => {
    // Snapshot mode at N and at N+1: the expected answers of every id, both versions.
    await publishSnapshot();
    const atN = runtime({ REFRESH_INTERVAL_SECS: '86400' });
    await atN.deps.mapping.ready(10_000);
    bq.insertRows(GRAPH_TABLE, todayRows);
    await publishSnapshot();
    const atNext = runtime({});
    await atNext.deps.mapping.ready(10_000);
    const table = await createMappingTable('continuous', WINDOW_DAYS);
    const reader = runtime({ ...bigtableEnv('continuous'), REFRESH_INTERVAL_SECS: '1' });
    try {
      const expected = new Map<string, { n: string; next: string }>();
      for (const { id } of graph.ids) {
        const [n, next] = await Promise.all([answer(atN, id), answer(atNext, id)]);
        expected.set(id, { n: n.seen, next: next.seen });
      }
      // The ids whose answers differ between the versions, and as many whose do not.
      const changed = [...expected].filter(([, e]) => e.n !== e.next).map(([id]) => id);
      const same = [...expected].filter(([, e]) => e.n === e.next).map(([id]) => id);
      expect(changed.length).toBeGreaterThan(100);
      const sample = [...changed.slice(0, 80), ...same.slice(0, 40)];

      // Version N, written whole (BigQuery's CURRENT_DATE is today, but N is its latest then).
      bq.createTable(
        GRAPH_TABLE,
        MAPPING_TABLE_SCHEMA,
        graph.rows.filter(([partition]) => partition !== NEXT).map((r) => [...r]),
      );
      expect(await testSyncJob({ bq, table, windowDays: WINDOW_DAYS })()).toMatchObject({
        outcome: 'synced',
        version: LAST,
      });
      bq.insertRows(GRAPH_TABLE, todayRows);
      await reader.deps.mapping.ready(5_000);

      // The reader: every answer must be one version's, whole, and say which.
      const mixed: string[] = [];
      const seen = { n: 0, next: 0 };
      let stop = false;
      const reading = (async () => {
        while (!stop) {
          for (const id of sample) {
            const got = await answer(reader, id);
            const e = expected.get(id) as { n: string; next: string };
            if (got.version === LAST && got.seen === e.n) seen.n++;
            else if (got.version === NEXT && got.seen === e.next) seen.next++;
            else if (got.version === undefined && (got.seen === e.n || got.seen === e.next))
              continue;
            else mixed.push(`${id} (${got.version}): ${got.seen.slice(0, 300)}`);
          }
        }
      })();

      // Version N+1 in a process of its own, on a slow cluster, killed halfway through a shard.
      const settings: SyncChildSettings = {
        bq: { baseUrl: bq.baseUrl, projectId: bq.projectId },
        tableId: 'continuous',
        windowDays: WINDOW_DAYS,
        shardPersons: 100,
        pageSize: 20,
        throttleMs: 40,
        claimLeaseMs: 2_000,
      };
      // Node itself with tsx's loader (the tsx command would be a wrapper process, and killing
      // it would leave the sync running).
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', `${ROOT}test/helpers/sync-child.ts`],
        {
          cwd: ROOT,
          env: { ...process.env, SYNC_CHILD_JSON: JSON.stringify(settings) },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const midShard = await eventually(
        async () => {
          const plan = await readPlan(table);
          const cut = [...(plan?.shards ?? [])].find(
            ([k, s]) =>
              !s.done && plan && (s.progress?.offset ?? 0) > shardRange(plan.plan, k).from,
          );
          if (!plan || !cut) throw new Error('no shard half written yet');
          return { plan, shard: cut[0] };
        },
        30_000,
        20,
      );
      child.kill('SIGKILL');
      expect(await exited).toBeNull();
      expect(await readVersion(table, 5_000)).toMatchObject({ partition: LAST });

      // The next runs continue (once the killed run's claim lapses) and land N+1.
      const runs = await syncUntilLanded(
        testSyncJob({
          bq,
          table,
          windowDays: WINDOW_DAYS,
          pageSize: 20,
          limits: { ...TEST_LIMITS, claimLeaseMs: settings.claimLeaseMs },
        }),
        60,
        500,
      );
      expect(runs.at(-1), JSON.stringify(runs, null, 1)).toMatchObject({
        outcome: 'synced',
        version: NEXT,
        previousVersion: LAST,
      });
      const resumed = runs.at(-1)?.plan;
      expect(resumed?.shards).toBe(midShard.plan.plan.shards);
      // The reader sees N+1 within its refresh interval; then one more pass.
      await eventually(async () => expect(seen.next).toBeGreaterThan(sample.length), 20_000);
      stop = true;
      await reading;

      expect(mixed).toEqual([]);
      expect(seen.n).toBeGreaterThan(0);

      // And the resumed version holds the very cells a single run writes.
      const whole = await createMappingTable('continuous-whole', WINDOW_DAYS);
      await testSyncJob({ bq, table: whole, windowDays: WINDOW_DAYS })();
      const version = (await readVersion(table, 5_000))?.version;
      const cellsAt = (cells: string[], v: number | undefined) =>
        cells.filter((c) => c.includes(`@${(v ?? 0) * 1000} `));
      const wholeVersion = (await readVersion(whole, 5_000))?.version;
      expect(cellsAt(await dumpCells(table, ['l']), version)).toEqual(
        cellsAt(await dumpCells(whole, ['l']), wholeVersion),
      );
    } finally {
      await Promise.all([atN, atNext, reader].map((r) => r.deps.store.close()));
      await reader.deps.mapping.close();
    }
  }, 180_000);
});

describe('a version too large for one run', () => {
  it('lands over several runs (a short deadline, throttled writes) with cells identical to a single run', async () => {
    withTodaysRows();
    const once = await createMappingTable('one-run', WINDOW_DAYS);
    expect(await testSyncJob({ bq, table: once, windowDays: WINDOW_DAYS })()).toMatchObject({
      outcome: 'synced',
    });

    const slow = await createMappingTable('many-runs', WINDOW_DAYS);
    // 3 s a run, its clean stop 750 ms before; every write held back 100 ms: a page of 20
    // persons costs at least 200 ms (its links, its progress), so no run writes more than 12
    // of the ~33 pages, nor a whole shard of 15 pages.
    const sync = testSyncJob({
      bq,
      table: throttledTable(slow, 100),
      windowDays: WINDOW_DAYS,
      pageSize: 20,
      config: { JOB_TIMEOUT_MS: 3_000, SYNC_SHARD_PERSONS: 300 },
    });
    const runs: SyncSummary[] = [];
    let stoppedMidShard = 0;
    for (let i = 0; i < 50 && runs.at(-1)?.outcome !== 'synced'; i++) {
      const run = await sync();
      runs.push(run);
      if (run.outcome !== 'in_progress') break;
      const plan = await readPlan(slow);
      const halfWritten = [...(plan?.shards ?? [])].some(
        ([k, s]) => plan && !s.done && (s.progress?.offset ?? 0) > shardRange(plan.plan, k).from,
      );
      if (halfWritten) stoppedMidShard++;
    }
    expect(runs.length).toBeGreaterThanOrEqual(3);
    const early = runs.slice(0, -1).map((r) => r.outcome);
    expect(early).toEqual(early.map(() => 'in_progress'));
    expect(runs.at(-1)).toMatchObject({ outcome: 'synced', version: NEXT });
    // Runs stopped inside shards (their progress carried over), not only between them.
    expect(stoppedMidShard).toBeGreaterThan(0);
    expect(await dumpCells(slow, ['l'])).toEqual(await dumpCells(once, ['l']));
  }, 120_000);
});

describe('shard workers', () => {
  /** A queue that only keeps what the coordinator publishes. */
  function captureQueue(): ShardQueue & { messages: ShardMessage[] } {
    const messages: ShardMessage[] = [];
    return {
      messages,
      publish: async (sent) => {
        messages.push(...sent);
      },
      drainDeadLetters: async () => [],
      close: async () => undefined,
    };
  }

  /** One worker instance (its own handler, as a Cloud Run instance has), answering push requests. */
  function workerInstance(table: Table) {
    const handler = createShardWorkerHandler({
      config: { SYNC_SHARD_TIMEOUT_MS: 60_000 },
      registry,
      source: graphSource(bq),
      table: async () => table,
      limits: TEST_LIMITS,
      log: silentLogger,
      now: Date.now,
    });
    return async (message: unknown, deliveryAttempt?: number) => {
      const body = JSON.stringify({
        message: { data: Buffer.from(JSON.stringify(message)).toString('base64'), messageId: '1' },
        subscription: 'projects/local-project/subscriptions/sync-shards',
        ...(deliveryAttempt ? { deliveryAttempt } : {}),
      });
      const res = await handler({ ...httpEvent('/', 'POST'), body }, {});
      return {
        status: res.statusCode,
        body: JSON.parse(resultText(res)) as Record<string, unknown>,
      };
    };
  }

  it('four of them, every shard pushed to each at once, write the cells one writer does, each shard landing once', async () => {
    withTodaysRows();
    const one = await createMappingTable('one-writer', WINDOW_DAYS);
    await testSyncJob({ bq, table: one, windowDays: WINDOW_DAYS })();

    const table = await createMappingTable('four-workers', WINDOW_DAYS);
    const queue = captureQueue();
    const coordinator = testSyncJob({ bq, table, windowDays: WINDOW_DAYS, queue });
    const dispatched = await coordinator();
    expect(dispatched).toMatchObject({ outcome: 'dispatched', plan: { done: 0 } });
    expect(queue.messages.map((m) => m.shard)).toEqual(
      Array.from({ length: dispatched.plan?.shards ?? 0 }, (_, k) => k),
    );
    // Four instances, each given every message (duplicates, as at-least-once delivery allows),
    // in its own order, all at once.
    const workers = [0, 1, 2, 3].map(() => workerInstance(table));
    const outcomes: string[] = [];
    await Promise.all(
      workers.map(async (push, w) => {
        const n = queue.messages.length;
        const shift = w * Math.floor(n / 4);
        for (let i = 0; i < n; i++) {
          // Rotated per worker, and backwards for two of them.
          const k = (w % 2 === 0 ? i + shift : n - 1 - i + shift) % n;
          const res = await push(queue.messages[k]);
          outcomes.push(
            `${res.status} ${res.body.outcome ?? (res.body.error as { code: string }).code}`,
          );
        }
      }),
    );
    const count = (what: string) => outcomes.filter((o) => o === what).length;
    expect(count('200 done')).toBe(dispatched.plan?.shards);
    // The rest found their shard landed, or held by another worker (Pub/Sub would deliver a
    // busy one again; by then it has landed).
    expect(
      count('200 done') + count('200 already_done') + count('200 stale') + count('503 busy'),
    ).toBe(outcomes.length);
    expect(await readVersion(table, 5_000)).toMatchObject({ partition: NEXT });
    expect(await readPlan(table)).toBeUndefined();
    expect(await dumpCells(table, ['l'])).toEqual(await dumpCells(one, ['l']));
    // A late duplicate changes nothing.
    expect((await workers[0]?.(queue.messages[0]))?.body.outcome).toBe('stale');
    // A coordinator run after that: nothing new.
    expect(await coordinator()).toMatchObject({ outcome: 'unchanged', version: NEXT });
  }, 60_000);

  it('plan a version again when BigQuery may no longer keep its rows, landing the same cells', async () => {
    withTodaysRows();
    const one = await createMappingTable('replan-one', WINDOW_DAYS);
    await testSyncJob({ bq, table: one, windowDays: WINDOW_DAYS })();
    const table = await createMappingTable('replan', WINDOW_DAYS);
    const queue = captureQueue();
    // Planned and published, but no worker took the shards.
    expect(await testSyncJob({ bq, table, windowDays: WINDOW_DAYS, queue })()).toMatchObject({
      outcome: 'dispatched',
    });
    const first = await readPlan(table);
    const { log, lines } = captureLogger();
    // A day later, a run writing the shards itself.
    const later = await testSyncJob({
      bq,
      table,
      windowDays: WINDOW_DAYS,
      log,
      now: () => Date.now() + PLAN_MAX_AGE_MS + 60_000,
    })();
    expect(later).toMatchObject({ outcome: 'synced', version: NEXT });
    expect(lines.map((l) => l.message)).toContainEqual(
      expect.stringMatching(/is older than BigQuery keeps its results: planning it again$/),
    );
    expect((await readVersion(table, 5_000))?.version).toBe(first?.plan.version);
    expect(await dumpCells(table, ['l'])).toEqual(await dumpCells(one, ['l']));
  }, 60_000);

  it('acknowledge what is not a shard, and say so', async () => {
    const table = await createMappingTable('not-shards', WINDOW_DAYS);
    const push = workerInstance(table);
    for (const message of [
      { planId: 'x', shard: 1 },
      'hello',
      { planId: '0123456789abcdef', partition: NEXT, shard: -1 },
    ]) {
      expect(await push(message)).toEqual({ status: 200, body: { outcome: 'not_a_shard' } });
    }
  });
});

describe('the next version', () => {
  it('waits until no instance can hold the version before the current one', async () => {
    // Version N current just now; N+1 in the table.
    const table = await createMappingTable('settling', WINDOW_DAYS);
    bq.createTable(
      GRAPH_TABLE,
      MAPPING_TABLE_SCHEMA,
      graph.rows.filter(([partition]) => partition !== NEXT).map((r) => [...r]),
    );
    await testSyncJob({ bq, table, windowDays: WINDOW_DAYS })();
    withTodaysRows();
    const queue: ShardQueue = {
      publish: async () => undefined,
      drainDeadLetters: async () => [],
      close: async () => undefined,
    };
    const early = await testSyncJob({
      bq,
      table,
      windowDays: WINDOW_DAYS,
      queue,
      settleMs: SETTLE_MS,
    })();
    expect(early).toMatchObject({ outcome: 'waiting', version: LAST });
    expect(early.reason).toMatch(
      /^version .* became current at .*: the next may start \d+ s from now/,
    );
    expect(await readPlan(table)).toBeUndefined();
    // Once that time has passed, the next run starts it.
    const later = await testSyncJob({
      bq,
      table,
      windowDays: WINDOW_DAYS,
      queue,
      settleMs: SETTLE_MS,
      now: () => Date.now() + SETTLE_MS,
    })();
    expect(later).toMatchObject({
      outcome: 'dispatched',
      version: LAST,
      plan: { partition: NEXT },
    });
  });

  it('is refused when it shrank past MIN_ROWS_RATIO, and written with {"force": true}', async () => {
    withTodaysRows();
    const table = await createMappingTable('shrinking', WINDOW_DAYS);
    await testSyncJob({ bq, table, windowDays: WINDOW_DAYS })();
    // Today's partition nearly empty, the days before gone: a source gone wrong.
    bq.createTable(
      GRAPH_TABLE,
      MAPPING_TABLE_SCHEMA,
      todayRows.slice(0, 30).map((r) => [...r]),
    );
    try {
      const refused = await testSyncJob({ bq, table, windowDays: WINDOW_DAYS })({ resync: true });
      expect(refused).toMatchObject({ outcome: 'refused', version: NEXT });
      expect(refused.reason).toMatch(
        /below MIN_ROWS_RATIO=0.5; \{"force": true\} writes it anyway$/,
      );
      expect(await readPlan(table)).toBeUndefined();
      const forced = await testSyncJob({ bq, table, windowDays: WINDOW_DAYS })({
        force: true,
        resync: true,
      });
      expect(forced).toMatchObject({ outcome: 'synced', version: NEXT });
      expect((await readVersion(table, 5_000))?.rows).toBeLessThan(40);
    } finally {
      withTodaysRows();
    }
  });
});

describe('a super-node of 100,000 ids', () => {
  it('is written in bounded entries, read with a bounded cell filter, and answered as in snapshot mode', async () => {
    const SUPER = 'local-project.identity.super_graph';
    const ids = Array.from({ length: 100_000 }, (_, i) => String(10_000_000_000 + i));
    bq.createTable(SUPER, MAPPING_TABLE_SCHEMA, [
      ...ids.map((id) => [NEXT, 'super', id, '444444']),
      [NEXT, 'small', '20000000001', '444444'],
      [NEXT, 'small', '20000000002', '444444'],
    ]);
    const superSource = graphSource(bq, 5_000, SUPER);
    const entries: { key: string; data: Record<string, Record<string, unknown>> }[] = [];
    const table = await createMappingTable('super-node', 1);
    const synced = await testSyncJob({
      bq,
      table: throttledTable(table, 0, entries),
      windowDays: 1,
      source: superSource,
      // The emulator takes seconds per call into a row of 100,000 columns (real Bigtable does not).
      limits: { ...TEST_LIMITS, callTimeoutMs: 120_000 },
    })();
    expect(synced).toMatchObject({ outcome: 'synced', ids: 100_002 });
    // The person row went out in entries of at most cellsPerEntry cells.
    const superEntries = entries.filter((e) => e.key === 'p#super');
    expect(superEntries.length).toBeGreaterThanOrEqual(100_000 / TEST_LIMITS.cellsPerEntry);
    expect(
      Math.max(...superEntries.map((e) => Object.keys(e.data[LINKS_FAMILY] ?? {}).length)),
    ).toBeLessThanOrEqual(TEST_LIMITS.cellsPerEntry);

    // Read back: the person row answers its count and the first members only.
    const returned: number[] = [];
    const counted = new Proxy(table, {
      get(target, prop, receiver) {
        if (prop !== 'getRows') return Reflect.get(target, prop, receiver);
        return async (options: GetRowsOptions) => {
          const result = await (target.getRows(options) as Promise<GetRowsResponse>);
          for (const row of result[0]) {
            if (row.id === 'p#super')
              returned.push(Object.keys(row.data[LINKS_FAMILY] ?? {}).length);
          }
          return result;
        };
      },
    });
    const store = new BigtableMappingStore(
      {
        ...BIGTABLE,
        tableId: 'super-node',
        windowDays: 1,
        refreshIntervalMs: 60_000,
        retryMaxMs: 1_000,
        maxStalenessSecs: 172_800,
      },
      counted,
    );
    const found = await store.find([registry.candidates(ids[500] as string)], 25, 5_000);
    expect(found.matches[0]).toMatchObject({ linkedTotal: 99_999 });
    expect(found.matches[0]?.linked.map((l) => l.id)).toEqual(
      ids.filter((_, i) => i !== 500).slice(0, 25),
    );
    expect(returned).toEqual([27]); // the count and 26 members
    const [rows] = await table.getRows({
      keys: ['p#super'],
      filter: [{ column: COUNT_QUALIFIER }],
    });
    expect(rows[0]?.data[LINKS_FAMILY]?.[COUNT_QUALIFIER]?.[0]?.value).toBe('100000');

    // Snapshot mode on the same table answers the same linked ids and total.
    const superDir = await makeTempDir();
    const published = await publishMappingSnapshot({
      bq,
      dir: superDir,
      windowDays: 1,
      table: SUPER,
      pageSize: 5_000,
    });
    expect(published.outcome).toBe('published');
    const snapshot = createProfileRuntime(
      loadProfileConfig({
        SNAPSHOT_URI: `file:${superDir}`,
        PROFILE_STORE: 'aerospike',
        AEROSPIKE_HOSTS: `${aerospike.host}:${aerospike.port}`,
      }),
      silentLogger,
    );
    try {
      await snapshot.deps.mapping.ready(30_000);
      const expected = await snapshot.deps.mapping.find(
        [registry.candidates(ids[500] as string)],
        25,
        5_000,
      );
      expect(found.matches).toEqual(expected.matches);
    } finally {
      await snapshot.deps.store.close();
      await store.close();
    }
  }, 120_000);
});
