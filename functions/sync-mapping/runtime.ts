import type { Table } from '@google-cloud/bigtable';
import { loadSyncJobConfig, type SyncJobConfig } from '../../shared/config.js';
import type { ScheduledHandler } from '../../shared/jobs/scheduled-job.js';
import { createLogger } from '../../shared/logger.js';
import { BigQueryPartitionSource } from '../../shared/mapping/bigquery-partition-source.js';
import { openMappingTable } from '../../shared/mapping/bigtable-mapping-store.js';
import { createSyncMappingHandler, type SyncSummary } from './handler.js';

/** Wires the sync job from its configuration. */
export function createSyncJob(config: SyncJobConfig): ScheduledHandler<SyncSummary> {
  let table: Promise<Table> | undefined;
  return createSyncMappingHandler({
    config,
    registry: config.ID_TYPES_JSON,
    source: new BigQueryPartitionSource({
      table: config.MAPPING_TABLE,
      personColumn: config.MAPPING_PERSON_COLUMN,
      idColumn: config.MAPPING_ID_COLUMN,
      typeColumn: config.MAPPING_TYPE_COLUMN,
      partitionColumn: config.MAPPING_PARTITION_COLUMN,
      windowDays: config.MAPPING_WINDOW_DAYS,
      projectId: config.BIGQUERY_PROJECT,
      location: config.BIGQUERY_LOCATION,
      jobTimeoutMs: config.JOB_TIMEOUT_MS,
      pageSize: config.BIGQUERY_PAGE_SIZE,
      accessToken: config.GOOGLE_OAUTH_ACCESS_TOKEN,
    }),
    table: () => {
      table ??= openMappingTable({
        projectId: config.BIGTABLE_PROJECT ?? config.GOOGLE_CLOUD_PROJECT ?? '',
        instanceId: config.BIGTABLE_INSTANCE ?? '',
        tableId: config.BIGTABLE_TABLE,
        appProfileId: config.BIGTABLE_APP_PROFILE,
      });
      return table;
    },
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
