import { MongoCatalogSource } from '../../shared/catalog/mongo-catalog-source.js';
import type { ScheduledHandler } from '../../shared/jobs/scheduled-job.js';
import { createLogger } from '../../shared/logger.js';
import { createSnapshotStore } from '../../shared/snapshots/create-snapshot-store.js';
import { type CatalogJobConfig, loadCatalogJobConfig } from './config.js';
import { createSnapshotCatalogHandler } from './handler.js';

/** Wires the catalog job from its configuration. */
export function createCatalogJob(config: CatalogJobConfig): ScheduledHandler {
  return createSnapshotCatalogHandler({
    config,
    source: new MongoCatalogSource({
      uri: config.MONGO_URI,
      database: config.MONGO_DATABASE,
      collection: config.MONGO_COLLECTION,
      idField: config.CATALOG_ID_FIELD,
      fields: config.CATALOG_FIELDS,
      batchSize: config.MONGO_BATCH_SIZE,
      maxTimeMs: config.MONGO_MAX_TIME_MS,
      connectTimeoutMs: config.MONGO_CONNECT_TIMEOUT_MS,
    }),
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

/** The module-scope job of this instance (its Mongo client is reused across runs). */
export function catalogJob(): ScheduledHandler {
  job ??= createCatalogJob(loadCatalogJobConfig(process.env));
  return job;
}
