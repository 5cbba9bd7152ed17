// Bigtable mode, measured: (g) the profile function reading its linked ids from Bigtable (Google's
// emulator, its own process) beside snapshot mode on the same data; (h) syncMapping's throughput
// and peak memory, BigQuery test server to the emulator: one run writing every shard itself, and
// the shards spread over 1, 2 and 4 shard-worker processes.
//   tsx test/bench/bigtable-bench.ts sync 1000000 5000000
//   tsx test/bench/bigtable-bench.ts workers 1000000 1,2,4
import { setTimeout as sleep } from 'node:timers/promises';
import type { Table } from '@google-cloud/bigtable';
import { createSyncMappingHandler } from '../../functions/sync-mapping/handler.js';
import type { DemoDataset } from '../../shared/demo/demo-dataset.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { silentLogger } from '../../shared/logger.js';
import {
  BigQueryVersionSource,
  type VersionRow,
  type VersionSource,
} from '../../shared/mapping/bigquery-version-source.js';
import { readVersion } from '../../shared/mapping/bigtable-mapping-store.js';
import type { ShardMessage, ShardQueue } from '../../shared/mapping/shard-queue.js';
import { BigtableEmulator } from '../emulators/bigtable-emulator.js';
import { bigQueryClientFor } from '../helpers/bigquery-client.js';
import { BIGTABLE, bigtableEnv, createMappingTable } from '../helpers/bigtable-table.js';
import { MANUAL_RUN } from '../helpers/scheduled-event.js';
import { IDS_PER_PERSON } from './bench-data.js';
import { startChildServer } from './child-server.js';
import { type FunctionProcess, startFunction } from './function-process.js';
import { type LoadFigures, load } from './http-load.js';
import { sampleMemory } from './memory-sampler.js';

/** The one partition the parts write: today's, so that the sync's look-back finds it on any day. */
const PARTITION = new Date().toISOString().slice(0, 10);

/** The demo dataset's persons as one version's result rows, in memory. */
function demoSource(data: DemoDataset): VersionSource {
  const rows: VersionRow[] = data.persons.map((person, p) => ({
    kind: 'person',
    person: `person-${String(p).padStart(6, '0')}`,
    ids: person.map(({ id, typeCode }) => ({ id, type: typeCode })),
  }));
  return {
    partitions: async () => [PARTITION],
    runVersionQuery: async () => ({
      result: { projectId: 'demo', location: undefined, jobId: 'demo' },
      rows: rows.length,
    }),
    async *pages(_result, from, to) {
      for (let offset = from; offset < to; offset += 10_000) {
        yield { offset, rows: rows.slice(offset, Math.min(to, offset + 10_000)) };
      }
    },
  };
}

/** The sync's settings for the bench (one version, today's partition). */
const BENCH_CONFIG = {
  JOB_TIMEOUT_MS: 3_600_000,
  MAPPING_WINDOW_DAYS: 1,
  MAPPING_LOOKBACK_DAYS: 7,
  MIN_ROWS_RATIO: 0,
  SYNC_SHARD_PERSONS: 100_000,
  SYNC_INLINE_WORKERS: 1,
};

/**
 * (g) The profile function on the demo data with its mapping in Bigtable, under the same load as
 * snapshot mode (part a). Both on the embedded profile store, so that the difference is the
 * mapping: two Bigtable reads per request against an in-memory lookup.
 */
export async function benchBigtableRequests(
  demo: { snapshotDir: string; profilesPath: string },
  data: DemoDataset,
  id: string,
  seconds: number,
  connections: readonly number[],
): Promise<{ bigtable: LoadFigures[]; snapshot: LoadFigures[]; sameAnswer: boolean }> {
  const emulator = await BigtableEmulator.start();
  try {
    process.env.BIGTABLE_EMULATOR_HOST = emulator.host;
    const table = await createMappingTable('identity-mapping', 1);
    const synced = await createSyncMappingHandler({
      config: BENCH_CONFIG,
      registry: defaultIdTypeRegistry(),
      source: demoSource(data),
      table: async () => table,
      log: silentLogger,
      now: Date.now,
    })(MANUAL_RUN, {});
    if (synced.outcome !== 'synced') throw new Error(`demo sync: ${JSON.stringify(synced)}`);
    await table.bigtable.close();
    const common = {
      SNAPSHOT_URI: `file:${demo.snapshotDir}`,
      EMBEDDED_PROFILES_PATH: demo.profilesPath,
    };
    const measure = async (env: Record<string, string>) => {
      const f = await startFunction('profile', { ...common, ...env });
      try {
        const body = await (await fetch(`${f.url}/?id=${id}`)).text();
        const figures: LoadFigures[] = [];
        for (const c of connections) figures.push(await load(`${f.url}/?id=${id}`, c, seconds));
        return { body, figures };
      } finally {
        await f.stop();
      }
    };
    const snapshot = await measure({});
    const bigtable = await measure({
      ...bigtableEnv('identity-mapping'),
      BIGTABLE_EMULATOR_HOST: emulator.host,
    });
    return {
      bigtable: bigtable.figures,
      snapshot: snapshot.figures,
      sameAnswer: bigtable.body === snapshot.body,
    };
  } finally {
    delete process.env.BIGTABLE_EMULATOR_HOST;
    await emulator.close();
  }
}

/** One measured sync. */
export interface SyncFigures {
  readonly ids: number;
  readonly seconds: number;
  readonly idsPerSecond: number;
  readonly peakRssBytes: number;
  readonly baselineRssBytes: number;
}

/** The test servers of a sync bench: BigQuery (its own process) and the Bigtable emulator. */
async function syncServers(ids: number) {
  const persons = Math.ceil(ids / IDS_PER_PERSON);
  const bq = await startChildServer<{ baseUrl: string; projectId: string }>(
    'bigquery-sync',
    String(persons),
    PARTITION,
  );
  const emulator = await BigtableEmulator.start();
  process.env.BIGTABLE_EMULATOR_HOST = emulator.host;
  const table = await createMappingTable('identity-mapping', 1);
  const source = new BigQueryVersionSource(
    {
      table: 'bench-project.identity.mapping',
      personColumn: 'person_id',
      idColumn: 'user_id',
      typeColumn: 'id_type',
      partitionColumn: 'partition_date',
      jobTimeoutMs: 3_600_000,
      pageSize: 20_000,
    },
    bigQueryClientFor(bq.info),
  );
  return {
    bq,
    emulator,
    table,
    source,
    close: async () => {
      await table.bigtable.close();
      delete process.env.BIGTABLE_EMULATOR_HOST;
      await Promise.all([bq.stop(), emulator.close()]);
    },
  };
}

/** (h) syncMapping over `ids` ids (persons of three) into the emulator, every shard written by the run itself. */
export async function benchSync(ids: number): Promise<SyncFigures> {
  const servers = await syncServers(ids);
  try {
    const run = createSyncMappingHandler({
      config: BENCH_CONFIG,
      registry: defaultIdTypeRegistry(),
      source: servers.source,
      table: async () => servers.table,
      log: silentLogger,
      now: Date.now,
    });
    global.gc?.();
    const baselineRssBytes = process.memoryUsage().rss;
    const stop = sampleMemory();
    const started = performance.now();
    const summary = await run(MANUAL_RUN, {});
    const seconds = (performance.now() - started) / 1000;
    const { peakRssBytes } = stop();
    if (summary.outcome !== 'synced') throw new Error(`sync: ${JSON.stringify(summary)}`);
    return {
      ids: summary.ids,
      seconds,
      idsPerSecond: summary.ids / seconds,
      peakRssBytes,
      baselineRssBytes,
    };
  } finally {
    await servers.close();
  }
}

/** One measured sync spread over shard-worker processes. */
export interface WorkerSyncFigures {
  readonly workers: number;
  readonly ids: number;
  readonly shards: number;
  readonly seconds: number;
  readonly idsPerSecond: number;
}

/**
 * (h) syncMapping over `ids` ids with its shards written by `workers` shard-worker processes
 * (functions-framework, target syncMappingShard, the built code): the coordinator plans the
 * version and hands the shards to a queue that keeps at most one in flight per worker, as Cloud
 * Run's max instances x concurrency 1 bounds Pub/Sub's pushes. The queue here is the bench's
 * stand-in for Pub/Sub (its emulator pushes two at a time on this machine): it POSTs the push
 * format and retries a 503 as a redelivery would. Timed from the plan to the version landing.
 */
export async function benchWorkers(
  ids: number,
  workers: number,
  shardPersons: number,
): Promise<WorkerSyncFigures> {
  const servers = await syncServers(ids);
  const processes: FunctionProcess[] = [];
  try {
    for (let i = 0; i < workers; i++) {
      processes.push(
        await startFunction('syncMappingShard', {
          ...bigtableEnv('identity-mapping'),
          BIGTABLE_PROJECT: BIGTABLE.projectId,
          BIGTABLE_EMULATOR_HOST: servers.emulator.host,
          BIGQUERY_EMULATOR_HOST: servers.bq.info.baseUrl,
          BIGQUERY_PROJECT: servers.bq.info.projectId,
          GOOGLE_OAUTH_ACCESS_TOKEN: 'bench-token',
          LOG_LEVEL: 'WARNING',
        }),
      );
    }
    const queue = new PushQueue(processes.map((p) => p.url));
    const run = createSyncMappingHandler({
      config: { ...BENCH_CONFIG, SYNC_SHARD_PERSONS: shardPersons },
      registry: defaultIdTypeRegistry(),
      source: servers.source,
      table: async () => servers.table,
      queue,
      log: silentLogger,
      now: Date.now,
    });
    const started = performance.now();
    const summary = await run(MANUAL_RUN, {});
    if (summary.outcome !== 'dispatched') throw new Error(`sync: ${JSON.stringify(summary)}`);
    await queue.drained();
    const version = await landed(servers.table);
    const seconds = (performance.now() - started) / 1000;
    return {
      workers,
      ids: version.ids,
      shards: summary.plan?.shards ?? 0,
      seconds,
      idsPerSecond: version.ids / seconds,
    };
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await servers.close();
  }
}

async function landed(table: Table) {
  for (;;) {
    const version = await readVersion(table, 5_000);
    if (version) return version;
    await sleep(50);
  }
}

/** The bench's queue: push requests to the workers, one in flight per worker, 503s retried. */
class PushQueue implements ShardQueue {
  private readonly waiting: ShardMessage[] = [];
  private running: Promise<void>[] = [];

  constructor(private readonly urls: readonly string[]) {}

  async publish(messages: readonly ShardMessage[]): Promise<void> {
    this.waiting.push(...messages);
    this.running = this.urls.map((url) => this.work(url));
  }

  async drainDeadLetters() {
    return [];
  }

  async drained(): Promise<void> {
    await Promise.all(this.running);
  }

  async close(): Promise<void> {}

  private async work(url: string): Promise<void> {
    for (let message = this.waiting.shift(); message; message = this.waiting.shift()) {
      const body = JSON.stringify({
        message: { data: Buffer.from(JSON.stringify(message)).toString('base64'), messageId: '1' },
        subscription: 'projects/bench/subscriptions/shards',
      });
      const res = await fetch(`${url}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      await res.arrayBuffer();
      if (res.status >= 300) {
        // A negative acknowledgement: delivered again later, as Pub/Sub would.
        await sleep(100);
        this.waiting.push(message);
      }
    }
  }
}

const MB = 1024 * 1024;

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === 'sync') {
    const sizes = process.argv.slice(3).map(Number);
    for (const ids of sizes.length > 0 ? sizes : [1_000_000]) {
      const f = await benchSync(ids);
      console.log(
        `sync ${f.ids} ids: ${f.seconds.toFixed(1)} s, ${Math.round(f.idsPerSecond)} ids/s, ` +
          `peak RSS ${Math.round(f.peakRssBytes / MB)} MB (before: ${Math.round(f.baselineRssBytes / MB)} MB)`,
      );
    }
  } else if (process.argv[2] === 'workers') {
    const ids = Number(process.argv[3] ?? 1_000_000);
    const counts = (process.argv[4] ?? '1,2,4').split(',').map(Number);
    for (const workers of counts) {
      const f = await benchWorkers(ids, workers, Math.ceil(ids / IDS_PER_PERSON / 16));
      console.log(
        `sync ${f.ids} ids in ${f.shards} shards, ${workers} worker process(es): ` +
          `${f.seconds.toFixed(1)} s, ${Math.round(f.idsPerSecond)} ids/s`,
      );
    }
  }
}
