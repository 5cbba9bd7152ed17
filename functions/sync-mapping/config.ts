import { z } from 'zod';
import {
  bigtableSchema,
  type Env,
  int,
  mappingJobSchema,
  parseEnv,
  requireBigtable,
} from '../../shared/config.js';

/** A Pub/Sub topic's or subscription's full name. */
export const pubsubName = (kind: 'topics' | 'subscriptions') =>
  z
    .string()
    .regex(
      new RegExp(
        `^projects/[a-z][a-z0-9-]{4,61}[a-z0-9]/${kind}/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`,
      ),
      `expected projects/<project>/${kind}/<name>`,
    );

/** The `syncMapping` job's settings: the mapping job's, the Bigtable table's, its own. */
export const syncJobSchema = mappingJobSchema
  .extend({
    ...bigtableSchema,
    /**
     * `mutations`: the function writes Bigtable itself. `export` (documented, not built): BigQuery
     * would write it with EXPORT DATA; see README "Choosing a mapping store".
     */
    MAPPING_SYNC_METHOD: z.enum(['mutations']).default('mutations'),
    /** Result rows (persons) per shard of a version. */
    SYNC_SHARD_PERSONS: int(1, 10_000_000).default(100_000),
    /** Where shards are published for the shard workers; unset: this function writes them itself. */
    SYNC_TOPIC: pubsubName('topics').optional(),
    /** Where Pub/Sub puts shards it gave up on; each run drains it, records them and sends them again. */
    SYNC_DEAD_LETTER_SUBSCRIPTION: pubsubName('subscriptions').optional(),
    /** Shards written at once when this function writes them itself (no SYNC_TOPIC). */
    SYNC_INLINE_WORKERS: int(1, 64).default(1),
  })
  .superRefine(requireBigtable);

/** Everything the `syncMapping` job reads from its environment. */
export type SyncJobConfig = Readonly<z.output<typeof syncJobSchema>>;

/** Validates the `syncMapping` job's environment; throws ConfigError naming the variable. */
export function loadSyncJobConfig(env: Env): SyncJobConfig {
  return parseEnv(syncJobSchema, env);
}
