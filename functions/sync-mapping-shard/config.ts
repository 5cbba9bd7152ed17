import { z } from 'zod';
import {
  bigtableSchema,
  commonSchema,
  type Env,
  int,
  parseEnv,
  requireBigtable,
} from '../../shared/config.js';

/** The `syncMappingShard` worker's settings: the common ones, the Bigtable table's, its own. */
export const syncShardSchema = commonSchema
  .extend({
    ...bigtableSchema,
    BIGQUERY_PROJECT: z.string().min(1).optional(),
    BIGQUERY_LOCATION: z.string().min(1).optional(),
    BIGQUERY_PAGE_SIZE: int(100, 100_000).default(20_000),
    /**
     * A shard's clean stop: progress saved, answered 503 so that Pub/Sub delivers it again. Below
     * the push subscription's ack deadline (at most 600 s), or Pub/Sub redelivers it meanwhile.
     */
    SYNC_SHARD_TIMEOUT_MS: int(10_000, 3_600_000).default(540_000),
  })
  .superRefine(requireBigtable);

/** Everything the `syncMappingShard` worker reads from its environment. */
export type SyncShardConfig = Readonly<z.output<typeof syncShardSchema>>;

/** Validates the `syncMappingShard` worker's environment; throws ConfigError naming the variable. */
export function loadSyncShardConfig(env: Env): SyncShardConfig {
  return parseEnv(syncShardSchema, env);
}
