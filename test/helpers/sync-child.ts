// syncMapping in a process of its own, so that a test can kill it (SIGKILL) halfway through a
// shard, as a crashed instance. Settings in SYNC_CHILD_JSON (see SyncChildSettings); the Bigtable
// emulator in BIGTABLE_EMULATOR_HOST. Prints its summary as one JSON line when it ends.
//   node --import tsx test/helpers/sync-child.ts
import { openMappingTable } from '../../shared/mapping/bigtable-mapping-store.js';
import { BIGTABLE, throttledTable } from './bigtable-table.js';
import { TEST_LIMITS, testSyncJob } from './sync-job.js';

/** What the child syncs, and how slowly. */
export interface SyncChildSettings {
  readonly bq: { readonly baseUrl: string; readonly projectId: string };
  readonly tableId: string;
  readonly windowDays: number;
  readonly shardPersons: number;
  readonly pageSize: number;
  readonly throttleMs: number;
  readonly claimLeaseMs: number;
}

const settings = JSON.parse(process.env.SYNC_CHILD_JSON ?? '{}') as SyncChildSettings;
const table = await openMappingTable({ ...BIGTABLE, tableId: settings.tableId });
const sync = testSyncJob({
  bq: settings.bq,
  table: throttledTable(table, settings.throttleMs),
  windowDays: settings.windowDays,
  config: { SYNC_SHARD_PERSONS: settings.shardPersons },
  pageSize: settings.pageSize,
  limits: { ...TEST_LIMITS, claimLeaseMs: settings.claimLeaseMs },
});
console.log(JSON.stringify(await sync()));
await table.bigtable.close();
