// Bigtable mode, measured: (g) the profile function reading its linked ids from Bigtable (Google's
// emulator, its own process) beside snapshot mode on the same data; (h) syncMapping's throughput
// and peak memory, BigQuery test server to the emulator.
//   tsx test/bench/bigtable-bench.ts sync 1000000 5000000
import { createSyncMappingHandler } from '../../functions/sync-mapping/handler.js';
import type { DemoDataset } from '../../shared/demo/demo-dataset.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { silentLogger } from '../../shared/logger.js';
import {
  BigQueryPartitionSource,
  type PartitionLink,
  type PartitionSource,
} from '../../shared/mapping/bigquery-partition-source.js';
import { syncPartition, writeCheckpoint } from '../../shared/mapping/sync-partition.js';
import { BigtableEmulator } from '../emulators/bigtable-emulator.js';
import { bigQueryClientFor } from '../helpers/bigquery-client.js';
import { bigtableEnv, createMappingTable } from '../helpers/bigtable-table.js';
import { MANUAL_RUN } from '../helpers/scheduled-event.js';
import { IDS_PER_PERSON } from './bench-data.js';
import { startChildServer } from './child-server.js';
import { startFunction } from './function-process.js';
import { type LoadFigures, load } from './http-load.js';
import { sampleMemory } from './memory-sampler.js';

/** The one partition the parts write: today's, so that the sync's look-back finds it on any day. */
const PARTITION = new Date().toISOString().slice(0, 10);

/** The demo dataset's persons as one partition's links, ordered by person (as BigQuery sends them). */
function demoSource(data: DemoDataset): PartitionSource {
  return {
    partitions: async () => [PARTITION],
    async *links(): AsyncIterable<PartitionLink> {
      const keyed = data.persons.map((person, p) => ({
        key: `person-${String(p).padStart(6, '0')}`,
        person,
      }));
      for (const { key, person } of keyed) {
        for (const { id, typeCode } of person) {
          yield { kind: 'link', person: key, id, type: typeCode, movedFrom: undefined };
        }
      }
    },
  };
}

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
    const signal = AbortSignal.timeout(600_000);
    await syncPartition(table, demoSource(data), PARTITION, defaultIdTypeRegistry(), signal);
    await writeCheckpoint(table, PARTITION, signal);
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

/** (h) syncMapping over `ids` ids (one partition, persons of three) into the emulator. */
export async function benchSync(ids: number): Promise<SyncFigures> {
  const persons = Math.ceil(ids / IDS_PER_PERSON);
  const bq = await startChildServer<{ baseUrl: string; projectId: string }>(
    'bigquery-sync',
    String(persons),
    PARTITION,
  );
  const emulator = await BigtableEmulator.start();
  try {
    process.env.BIGTABLE_EMULATOR_HOST = emulator.host;
    const table = await createMappingTable('identity-mapping', 1);
    const run = createSyncMappingHandler({
      config: { JOB_TIMEOUT_MS: 3_600_000, MAPPING_WINDOW_DAYS: 1, MAPPING_LOOKBACK_DAYS: 7 },
      registry: defaultIdTypeRegistry(),
      source: new BigQueryPartitionSource(
        {
          table: 'bench-project.identity.mapping',
          personColumn: 'person_id',
          idColumn: 'user_id',
          typeColumn: 'id_type',
          partitionColumn: 'partition_date',
          windowDays: 1,
          jobTimeoutMs: 3_600_000,
          pageSize: 20_000,
        },
        bigQueryClientFor(bq.info),
      ),
      table: async () => table,
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
    await table.bigtable.close();
    return {
      ids: summary.ids,
      seconds,
      idsPerSecond: summary.ids / seconds,
      peakRssBytes,
      baselineRssBytes,
    };
  } finally {
    delete process.env.BIGTABLE_EMULATOR_HOST;
    await Promise.all([bq.stop(), emulator.close()]);
  }
}

const MB = 1024 * 1024;

if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === 'sync') {
  const sizes = process.argv.slice(3).map(Number);
  for (const ids of sizes.length > 0 ? sizes : [1_000_000]) {
    const f = await benchSync(ids);
    console.log(
      `sync ${f.ids} ids: ${f.seconds.toFixed(1)} s, ${Math.round(f.idsPerSecond)} ids/s, ` +
        `peak RSS ${Math.round(f.peakRssBytes / MB)} MB (before: ${Math.round(f.baselineRssBytes / MB)} MB)`,
    );
  }
}
