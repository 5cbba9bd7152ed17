import type { Table } from '@google-cloud/bigtable';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileRuntime, type ProfileRuntime } from '../../functions/profile/runtime.js';
import { createSyncMappingHandler } from '../../functions/sync-mapping/handler.js';
import { BackendUnavailableError } from '../../shared/errors.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import type { ScheduledEvent } from '../../shared/jobs/scheduled-job.js';
import { silentLogger } from '../../shared/logger.js';
import {
  BigQueryPartitionSource,
  type PartitionSource,
} from '../../shared/mapping/bigquery-partition-source.js';
import {
  BigtableMappingStore,
  readCheckpoint,
} from '../../shared/mapping/bigtable-mapping-store.js';
import type { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import type { BigQueryEmulator } from '../emulators/bigquery-emulator.js';
import type { BigtableEmulator } from '../emulators/bigtable-emulator.js';
import { bigQueryClientFor } from '../helpers/bigquery-client.js';
import { BIGTABLE, bigtableEnv, createMappingTable } from '../helpers/bigtable-table.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/eventually.js';
import { GRAPH_TABLE, type GraphStack, startGraphStack } from '../helpers/graph-stack.js';
import { httpEvent, resultJson } from '../helpers/http-event.js';
import { MAPPING_COLUMNS, type PartitionedMapping } from '../helpers/partitioned-mapping.js';
import { MANUAL_RUN } from '../helpers/scheduled-event.js';

// Bigtable mode when things go wrong: the emulator silent or gone, a sync killed halfway,
// BigQuery failing. Google's emulator throughout; no hand-written Bigtable.
const LAST = '2026-11-25';
const WINDOW_DAYS = 2;
const registry = defaultIdTypeRegistry();
const SOURCE_OPTIONS = {
  table: GRAPH_TABLE,
  ...MAPPING_COLUMNS,
  windowDays: WINDOW_DAYS,
  jobTimeoutMs: 60_000,
  pageSize: 200,
};

let stack: GraphStack;
let bq: BigQueryEmulator;
let aerospike: AerospikeEmulator;
let bigtable: BigtableEmulator;
let graph: PartitionedMapping;
let dir: string;
let profile: ProfileRuntime;

function syncInto(table: Table, source: PartitionSource = partitionSource(), log = silentLogger) {
  const run = createSyncMappingHandler({
    config: { JOB_TIMEOUT_MS: 30_000, MAPPING_WINDOW_DAYS: WINDOW_DAYS, MAPPING_LOOKBACK_DAYS: 7 },
    registry,
    source,
    table: async () => table,
    limits: { batchEntries: 50, cellsPerEntry: 20, maxInFlight: 2, callTimeoutMs: 5_000 },
    log,
    now: () => Date.parse(`${LAST}T12:00:00Z`),
  });
  return (event: Partial<ScheduledEvent> = {}) => run({ ...MANUAL_RUN, ...event }, {});
}

function partitionSource(): BigQueryPartitionSource {
  return new BigQueryPartitionSource(SOURCE_OPTIONS, bigQueryClientFor(bq));
}

/** Every cell of a table (all versions), as comparable text. */
async function dump(table: Table): Promise<string[]> {
  const [rows] = await table.getRows();
  const cells: string[] = [];
  for (const row of rows) {
    for (const [family, columns] of Object.entries(
      row.data as Record<string, Record<string, { value: string; timestamp: string }[]>>,
    )) {
      for (const [qualifier, versions] of Object.entries(columns)) {
        for (const cell of versions) {
          cells.push(
            `${row.id} ${family}:${JSON.stringify(qualifier)} @${cell.timestamp} = ${cell.value}`,
          );
        }
      }
    }
  }
  return cells.sort();
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
    const store = new BigtableMappingStore(
      {
        ...BIGTABLE,
        tableId: 'counted',
        windowDays: WINDOW_DAYS,
        refreshIntervalMs: 60_000,
        retryMaxMs: 1_000,
        maxStalenessSecs: 172_800,
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
  it('repairs a sync killed mid-partition: a re-run leaves the same cells as an uninterrupted one', async () => {
    const whole = await createMappingTable('whole', WINDOW_DAYS);
    await syncInto(whole)();

    const broken = await createMappingTable('interrupted', WINDOW_DAYS);
    // A source that dies 100 rows into the last partition, as a killed instance would.
    const real = partitionSource();
    let served = 0;
    const dying: PartitionSource = {
      partitions: (from, to, signal) => real.partitions(from, to, signal),
      async *links(partition, signal) {
        for await (const link of real.links(partition, signal)) {
          if (partition === LAST && ++served > 100)
            throw new BackendUnavailableError('bigquery', 'killed');
          yield link;
        }
      },
    };
    const { log, lines } = captureLogger();
    await expect(syncInto(broken, dying, log)()).rejects.toThrow(/killed/);
    // The checkpoint stopped before the half-written partition.
    expect(await readCheckpoint(broken, 5_000)).toBe('2026-11-24');
    // The run's log line says it failed, and how far it got.
    const failed = lines.find((line) => line.severity === 'ERROR');
    expect(failed?.message).toMatch(/^syncMapping: failed: .*killed/);
    expect(failed?.summary).toMatchObject({
      outcome: 'failed',
      reason: expect.stringMatching(/killed/),
      checkpoint: '2026-11-24',
      partitions: [{ partition: '2026-11-24' }],
    });
    expect(await syncInto(broken)()).toMatchObject({
      outcome: 'synced',
      checkpoint: LAST,
      partitions: [{ partition: LAST }],
    });
    expect(await dump(broken)).toEqual(await dump(whole));
    // And running a partition again changes nothing.
    await syncInto(broken)({ backfill: { from: LAST, to: LAST } });
    expect(await dump(broken)).toEqual(await dump(whole));
  });

  it('leaves the checkpoint where it was when BigQuery fails', async () => {
    const table = await createMappingTable('bq-failing', WINDOW_DAYS);
    bq.inject({ on: 'page', page: 2, status: 503, times: 100 });
    try {
      await expect(syncInto(table)()).rejects.toThrow(BackendUnavailableError);
    } finally {
      bq.clearFaults();
    }
    expect(await readCheckpoint(table, 5_000)).toBeUndefined();
    expect(await syncInto(table)()).toMatchObject({ outcome: 'synced', checkpoint: LAST });
  });
});
