import { Readable } from 'node:stream';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileRuntime, type ProfileRuntime } from '../../functions/profile/runtime.js';
import { createSnapshotMappingHandler } from '../../functions/snapshot-mapping/handler.js';
import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { silentLogger } from '../../shared/logger.js';
import { BigQueryMappingSource } from '../../shared/mapping/bigquery-mapping-source.js';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';
import { publishSnapshot } from '../../shared/snapshots/publish-snapshot.js';
import { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import { BigQueryEmulator } from '../emulators/bigquery-emulator.js';
import { BigtableEmulator } from '../emulators/bigtable-emulator.js';
import { bigQueryClientFor } from './bigquery-client.js';
import {
  MAPPING_COLUMNS,
  MAPPING_TABLE_SCHEMA,
  type PartitionedMapping,
  partitionedMapping,
} from './partitioned-mapping.js';
import { MANUAL_RUN } from './scheduled-event.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

/** The BigQuery table startGraphStack loads the graph into. */
export const GRAPH_TABLE = 'local-project.identity.user_mapping';

/** The test servers of a partitioned identity graph, loaded (see startGraphStack). */
export interface GraphStack {
  readonly bq: BigQueryEmulator;
  readonly aerospike: AerospikeEmulator;
  readonly bigtable: BigtableEmulator;
  readonly graph: PartitionedMapping;
  /** A local snapshot store holding the graph's catalog (`file:${dir}`). */
  readonly dir: string;
  /** Stops the servers, removes `dir` and clears BIGTABLE_EMULATOR_HOST. */
  close(): Promise<void>;
}

/**
 * Starts the BigQuery, Aerospike and Bigtable test servers for a partitioned identity graph: its
 * rows in GRAPH_TABLE (CURRENT_DATE its last partition), its profiles in Aerospike, its catalog
 * published in `dir`, and BIGTABLE_EMULATOR_HOST set for the Bigtable client. Tables in Bigtable
 * are left to the test (createMappingTable).
 */
export async function startGraphStack(
  options: Parameters<typeof partitionedMapping>[0],
): Promise<GraphStack> {
  const [bq, aerospike, bigtable] = await Promise.all([
    BigQueryEmulator.start({ projectId: 'local-project' }),
    AerospikeEmulator.start(),
    BigtableEmulator.start(),
  ]);
  process.env.BIGTABLE_EMULATOR_HOST = bigtable.host;
  const dir = await makeTempDir();
  const close = async () => {
    await Promise.all([bq.close(), aerospike.close(), bigtable.close()]);
    await removeTempDir(dir);
    delete process.env.BIGTABLE_EMULATOR_HOST;
  };
  try {
    const graph = partitionedMapping(options);
    bq.setCurrentDate(options.last);
    bq.createTable(
      GRAPH_TABLE,
      MAPPING_TABLE_SCHEMA,
      graph.rows.map((r) => [...r]),
    );
    await aerospike.putMany(
      'profiles',
      graph.data.profiles.map((p) => ({
        set: p.set,
        key: { type: 'string' as const, value: p.key },
        bins: p.bins as never,
      })),
    );
    await publishSnapshot(
      new LocalSnapshotStore(dir),
      catalogCodec,
      Readable.from(graph.data.segments),
      { source: {}, minRowsRatio: 0 },
    );
    return { bq, aerospike, bigtable, graph, dir, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * A profile runtime on a graph stack's servers (the Aerospike test server, the catalog in
 * `dir`), reading a window of `windowDays`; `env` picks the mapping store and anything else.
 */
export function graphRuntime(
  stack: Pick<GraphStack, 'aerospike' | 'dir'>,
  windowDays: number,
  env: Record<string, string>,
): ProfileRuntime {
  return createProfileRuntime(
    loadProfileConfig({
      SNAPSHOT_URI: `file:${stack.dir}`,
      PROFILE_STORE: 'aerospike',
      AEROSPIKE_HOSTS: `${stack.aerospike.host}:${stack.aerospike.port}`,
      LINKED_IDS_MAX: '25',
      MAPPING_WINDOW_DAYS: String(windowDays),
      ...env,
    }),
    silentLogger,
  );
}

/**
 * snapshotMapping over `table` in the BigQuery test server as it is now, reading a window of
 * `windowDays`, published to the local snapshot store in `dir`: the summary of the run.
 */
export function publishMappingSnapshot(options: {
  readonly bq: BigQueryEmulator;
  readonly dir: string;
  readonly windowDays: number;
  readonly table?: string;
  readonly pageSize?: number;
}) {
  const { bq, dir, windowDays, table = GRAPH_TABLE, pageSize = 500 } = options;
  return createSnapshotMappingHandler({
    config: {
      MIN_ROWS_RATIO: 0,
      JOB_TIMEOUT_MS: 60_000,
      MAPPING_WINDOW_DAYS: windowDays,
      MAPPING_MAX_BYTES: 0,
    },
    registry: defaultIdTypeRegistry(),
    source: new BigQueryMappingSource(
      { table, ...MAPPING_COLUMNS, windowDays, lookbackDays: 7, jobTimeoutMs: 60_000, pageSize },
      bigQueryClientFor(bq),
    ),
    store: new LocalSnapshotStore(dir),
    log: silentLogger,
    now: Date.now,
  })(MANUAL_RUN, {});
}
