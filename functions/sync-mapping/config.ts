import { z } from 'zod';
import {
  bigtableSchema,
  type Env,
  mappingJobSchema,
  parseEnv,
  requireBigtable,
} from '../../shared/config.js';

/** The `syncMapping` job's settings: the mapping job's, the Bigtable table's, its own. */
export const syncJobSchema = mappingJobSchema
  .extend({
    ...bigtableSchema,
    /**
     * `mutations`: the function writes Bigtable itself. `export` (documented, not built): BigQuery
     * would write it with EXPORT DATA; see README "Choosing a mapping store".
     */
    MAPPING_SYNC_METHOD: z.enum(['mutations']).default('mutations'),
  })
  .superRefine(requireBigtable);

/** Everything the `syncMapping` job reads from its environment. */
export type SyncJobConfig = Readonly<z.output<typeof syncJobSchema>>;

/** Validates the `syncMapping` job's environment; throws ConfigError naming the variable. */
export function loadSyncJobConfig(env: Env): SyncJobConfig {
  return parseEnv(syncJobSchema, env);
}
