import type { Table } from '@google-cloud/bigtable';
import { bigtableTableOptions } from '../../shared/config.js';
import type { HandlerContext, HttpEvent, HttpResult } from '../../shared/http/http-event.js';
import { createLogger } from '../../shared/logger.js';
import { BigQueryResultPages } from '../../shared/mapping/bigquery-version-source.js';
import { openMappingTable } from '../../shared/mapping/bigtable-mapping-store.js';
import { loadSyncShardConfig, type SyncShardConfig } from './config.js';
import { createShardWorkerHandler } from './handler.js';

type ShardWorker = (event: HttpEvent, context: HandlerContext) => Promise<HttpResult>;

/** Wires the shard worker from its configuration. */
export function createShardWorker(config: SyncShardConfig): ShardWorker {
  let table: Promise<Table> | undefined;
  return createShardWorkerHandler({
    config,
    registry: config.ID_TYPES_JSON,
    source: new BigQueryResultPages({
      projectId: config.BIGQUERY_PROJECT,
      location: config.BIGQUERY_LOCATION,
      jobTimeoutMs: config.SYNC_SHARD_TIMEOUT_MS,
      pageSize: config.BIGQUERY_PAGE_SIZE,
      accessToken: config.GOOGLE_OAUTH_ACCESS_TOKEN,
    }),
    table: () => {
      table ??= openMappingTable(bigtableTableOptions(config));
      return table;
    },
    log: createLogger({ minSeverity: config.LOG_LEVEL }),
    now: Date.now,
  });
}

let worker: ShardWorker | undefined;

/** The module-scope worker of this instance (its clients are reused across deliveries). */
export function shardWorker(): ShardWorker {
  worker ??= createShardWorker(loadSyncShardConfig(process.env));
  return worker;
}
