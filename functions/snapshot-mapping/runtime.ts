import { bigQueryMappingOptions, type MappingJobConfig } from '../../shared/config.js';
import type { ScheduledHandler } from '../../shared/jobs/scheduled-job.js';
import { createLogger } from '../../shared/logger.js';
import { BigQueryMappingSource } from '../../shared/mapping/bigquery-mapping-source.js';
import { createSnapshotStore } from '../../shared/snapshots/create-snapshot-store.js';
import { loadMappingJobConfig } from './config.js';
import { createSnapshotMappingHandler } from './handler.js';

/** The BigQuery source the job's configuration describes. */
export function mappingSourceFor(config: MappingJobConfig): BigQueryMappingSource {
  return new BigQueryMappingSource(bigQueryMappingOptions(config));
}

/** Wires the mapping job from its configuration. */
export function createMappingJob(config: MappingJobConfig): ScheduledHandler {
  return createSnapshotMappingHandler({
    config,
    registry: config.ID_TYPES_JSON,
    source: mappingSourceFor(config),
    store: createSnapshotStore(
      config.SNAPSHOT_URI,
      config.SNAPSHOT_TIMEOUT_MS,
      config.GOOGLE_OAUTH_ACCESS_TOKEN,
    ),
    log: createLogger({ minSeverity: config.LOG_LEVEL }),
    now: Date.now,
  });
}

let job: ScheduledHandler | undefined;

/** The module-scope job of this instance. */
export function mappingJob(): ScheduledHandler {
  job ??= createMappingJob(loadMappingJobConfig(process.env));
  return job;
}
