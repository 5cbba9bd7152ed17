import { z } from 'zod';
import { type Env, int, jobSchema, parseEnv } from '../../shared/config.js';

/** The `snapshotCatalog` job's settings: the common job settings and MongoDB's. */
export const catalogJobSchema = jobSchema.extend({
  MONGO_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'expected a mongodb:// or mongodb+srv:// URI'),
  MONGO_DATABASE: z.string().min(1),
  MONGO_COLLECTION: z.string().min(1).default('segments'),
  CATALOG_ID_FIELD: z.string().min(1).default('segment_id'),
  /** Comma-separated fields to copy besides the id; unset: every field but _id. */
  CATALOG_FIELDS: z
    .string()
    .optional()
    .transform((v) =>
      v
        ?.split(',')
        .map((f) => f.trim())
        .filter((f) => f !== ''),
    ),
  MONGO_BATCH_SIZE: int(1, 100_000).default(1_000),
  MONGO_MAX_TIME_MS: int(100, 3_600_000).default(120_000),
  MONGO_CONNECT_TIMEOUT_MS: int(100, 120_000).default(10_000),
});

/** Everything the `snapshotCatalog` job reads from its environment. */
export type CatalogJobConfig = Readonly<z.output<typeof catalogJobSchema>>;

/** Validates the `snapshotCatalog` job's environment; throws ConfigError naming the variable. */
export function loadCatalogJobConfig(env: Env): CatalogJobConfig {
  return parseEnv(catalogJobSchema, env);
}
