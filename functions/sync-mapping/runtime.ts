import type { Table } from '@google-cloud/bigtable';
import { bigQueryMappingOptions, bigtableTableOptions } from '../../shared/config.js';
import type { ScheduledHandler } from '../../shared/jobs/scheduled-job.js';
import { createLogger } from '../../shared/logger.js';
import { BigQueryVersionSource } from '../../shared/mapping/bigquery-version-source.js';
import { openMappingTable } from '../../shared/mapping/bigtable-mapping-store.js';
import { PubSubShardQueue } from '../../shared/mapping/shard-queue.js';
import { loadSyncJobConfig, type SyncJobConfig } from './config.js';
import { createSyncMappingHandler, type SyncSummary } from './handler.js';

/** Wires the sync job from its configuration. */
export function createSyncJob(config: SyncJobConfig): ScheduledHandler<SyncSummary> {
  let table: Promise<Table> | undefined;
  return createSyncMappingHandler({
    config,
    registry: config.ID_TYPES_JSON,
    source: new BigQueryVersionSource(bigQueryMappingOptions(config)),
    table: () => {
      table ??= openMappingTable(bigtableTableOptions(config));
      return table;
    },
    queue: config.SYNC_TOPIC
      ? new PubSubShardQueue(config.SYNC_TOPIC, config.SYNC_DEAD_LETTER_SUBSCRIPTION)
      : undefined,
    log: createLogger({ minSeverity: config.LOG_LEVEL }),
    now: Date.now,
  });
}

let job: ScheduledHandler<SyncSummary> | undefined;

/** The module-scope job of this instance (its clients are reused across runs). */
export function syncJob(): ScheduledHandler<SyncSummary> {
  job ??= createSyncJob(loadSyncJobConfig(process.env));
  return job;
}
