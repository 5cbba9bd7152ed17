import Aerospike, { type Client } from 'aerospike';
import { MongoClient } from 'mongodb';
import type { DemoDataset } from '../../shared/demo/demo-dataset.js';
import { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import { BigQueryEmulator } from '../emulators/bigquery-emulator.js';
import { GcsEmulator } from '../emulators/gcs-emulator.js';
import { MongoEmulator } from '../emulators/mongo-emulator.js';
import { MAPPING_TABLE_SCHEMA } from './partitioned-mapping.js';

/** All four test servers, and the environment that points the production adapters at them. */
export interface LocalStack {
  readonly gcs: GcsEmulator;
  readonly bigquery: BigQueryEmulator;
  readonly mongo: MongoEmulator;
  readonly aerospike: AerospikeEmulator;
  /** Environment for all three functions (production adapters, test servers). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Loads a dataset into MongoDB, BigQuery and Aerospike the way production holds it: the mapping
   * as the partition `partition` (default: today's UTC date), BigQuery's CURRENT_DATE that day.
   */
  seed(data: DemoDataset, partition?: string): Promise<void>;
  /** Adds rows to the BigQuery mapping table (partition of the last seed). */
  addMappingRows(rows: readonly { person: string; id: string; typeCode: string }[]): void;
  close(): Promise<void>;
}

const BUCKET = 'profile-api-snapshots';
const PROJECT = 'local-project';
const MAPPING_TABLE = `${PROJECT}.identity.user_mapping`;
/** The mapping partition seed() writes when given none: today's, so that it is the latest. */
function today(): string {
  return new Date().toISOString().slice(0, 10);
}

/** Starts the GCS, BigQuery, MongoDB and Aerospike test servers. */
export async function startLocalStack(): Promise<LocalStack> {
  const [gcs, bigquery, mongo, aerospike] = await Promise.all([
    GcsEmulator.start(),
    BigQueryEmulator.start({ projectId: PROJECT }),
    MongoEmulator.start(),
    AerospikeEmulator.start(),
  ]);
  gcs.createBucket(BUCKET);
  let seeded = today();
  const env = {
    SNAPSHOT_URI: `gs://${BUCKET}/profile-api`,
    // The client libraries' own switches for local endpoints; our code only reads the URIs.
    STORAGE_EMULATOR_HOST: gcs.baseUrl,
    BIGQUERY_EMULATOR_HOST: bigquery.baseUrl,
    GOOGLE_OAUTH_ACCESS_TOKEN: 'local-test-token',
    GOOGLE_CLOUD_PROJECT: PROJECT,
    MONGO_URI: mongo.uri,
    MONGO_DATABASE: 'adtech',
    MONGO_COLLECTION: 'segments',
    MAPPING_TABLE,
    BIGQUERY_PROJECT: PROJECT,
    PROFILE_STORE: 'aerospike',
    AEROSPIKE_HOSTS: `${aerospike.host}:${aerospike.port}`,
    AEROSPIKE_NAMESPACE: 'profiles',
  };
  return {
    gcs,
    bigquery,
    mongo,
    aerospike,
    env,
    seed: (data, partition = today()) => {
      seeded = partition;
      return seed({ mongo, bigquery, aerospike }, data, partition);
    },
    addMappingRows: (rows) =>
      bigquery.insertRows(
        MAPPING_TABLE,
        rows.map((r) => [seeded, r.person, r.id, r.typeCode]),
      ),
    close: async () => {
      await Promise.all([gcs.close(), bigquery.close(), mongo.close(), aerospike.close()]);
    },
  };
}

async function seed(
  servers: { mongo: MongoEmulator; bigquery: BigQueryEmulator; aerospike: AerospikeEmulator },
  data: DemoDataset,
  partition: string,
): Promise<void> {
  const mongo = new MongoClient(servers.mongo.uri);
  try {
    const segments = mongo.db('adtech').collection('segments');
    await segments.deleteMany({});
    // The catalog as the original system keeps it: numeric segment_id, a Mongo _id.
    await segments.insertMany(
      data.segments.map(({ id, ...rest }) => ({ segment_id: Number(id), ...rest })),
    );
  } finally {
    await mongo.close();
  }

  // The identity mapping as a date-partitioned table: the job's own SQL runs on it.
  servers.bigquery.setCurrentDate(partition);
  servers.bigquery.createTable(
    MAPPING_TABLE,
    MAPPING_TABLE_SCHEMA,
    data.persons.flatMap((person, p) =>
      person.map(({ id, typeCode }) => [partition, `person-${p}`, id, typeCode]),
    ),
  );

  const client: Client = await Aerospike.connect({
    hosts: [{ addr: servers.aerospike.host, port: servers.aerospike.port }],
    log: { level: Aerospike.log.OFF },
  });
  try {
    for (const p of data.profiles) {
      await client.put(
        new Aerospike.Key('profiles', p.set, p.key),
        p.bins as Record<string, never>,
      );
    }
  } finally {
    // Keep the module's event loop: the profile store in this process connects after us.
    client.close(false);
  }
}
