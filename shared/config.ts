import { z } from 'zod';
import { ConfigError } from './errors.js';
import {
  createIdTypeRegistry,
  DEFAULT_ID_TYPE_SPECS,
  type IdTypeRegistry,
  idTypeSpecSchema,
} from './id-types.js';
import type { BigQueryMappingOptions } from './mapping/bigquery-mapping-source.js';
import type { BigtableTableOptions } from './mapping/bigtable-mapping-store.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Which requests the profile function logs itself (LOG_REQUESTS). */
export type LogRequests =
  | { readonly mode: 'all' }
  | { readonly mode: 'errors' }
  | { readonly mode: 'sample'; readonly rate: number };

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const flag = z.stringbool().default(false);

const idTypesJson = z
  .string()
  .optional()
  .transform((raw, ctx): IdTypeRegistry => {
    let specs: unknown = DEFAULT_ID_TYPE_SPECS;
    if (raw !== undefined && raw.trim() !== '') {
      try {
        specs = JSON.parse(raw);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not valid JSON' });
        return z.NEVER;
      }
    }
    const parsed = z.array(idTypeSpecSchema).min(1).safeParse(specs);
    if (!parsed.success) {
      ctx.addIssue({ code: 'custom', message: z.prettifyError(parsed.error) });
      return z.NEVER;
    }
    try {
      return createIdTypeRegistry(parsed.data);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

/** Comma-separated API keys (several while rotating), each long enough to be secret. */
const apiKeys = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== ''),
  )
  .refine((keys) => keys.every((k) => k.length >= 16), 'every key needs at least 16 characters');

/** Where snapshots live: `gs://bucket/prefix` or a local directory (`file:path`, `file:///abs`). */
export const snapshotUriSchema = z
  .string()
  .regex(
    /^(gs:\/\/[a-z0-9][a-z0-9._-]{1,220}(\/.*)?|file:.+)$/,
    'expected gs://bucket[/prefix] or file:<dir>',
  );

const commonSchema = z.object({
  SNAPSHOT_URI: snapshotUriSchema.default('file:.data/demo/snapshots'),
  SNAPSHOT_TIMEOUT_MS: int(100, 600_000).default(30_000),
  ID_TYPES_JSON: idTypesJson,
  LOG_USER_IDS: flag,
  LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARNING', 'ERROR']).default('INFO'),
  GOOGLE_CLOUD_PROJECT: z.string().optional(),
  /** A bearer token for Google APIs instead of Application Default Credentials (local runs). */
  GOOGLE_OAUTH_ACCESS_TOKEN: z.string().min(1).optional(),
});

/** Where the Bigtable mapping table is (MAPPING_STORE=bigtable and syncMapping). */
const bigtableSchema = {
  BIGTABLE_PROJECT: z.string().min(1).optional(),
  BIGTABLE_INSTANCE: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,31}[a-z0-9]$/, 'a Bigtable instance id')
    .optional(),
  BIGTABLE_TABLE: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,50}$/, 'a Bigtable table id')
    .default('identity-mapping'),
  BIGTABLE_APP_PROFILE: z.string().min(1).optional(),
};

type BigtableSettings = {
  readonly BIGTABLE_PROJECT?: string | undefined;
  readonly BIGTABLE_INSTANCE?: string | undefined;
  readonly BIGTABLE_TABLE: string;
  readonly BIGTABLE_APP_PROFILE?: string | undefined;
  readonly GOOGLE_CLOUD_PROJECT?: string | undefined;
};

/** A Bigtable store needs an instance and a project (its own, or GOOGLE_CLOUD_PROJECT). */
function requireBigtable(c: Omit<BigtableSettings, 'BIGTABLE_TABLE'>, ctx: z.RefinementCtx) {
  if (!c.BIGTABLE_INSTANCE) {
    ctx.addIssue({
      code: 'custom',
      path: ['BIGTABLE_INSTANCE'],
      message: 'required with Bigtable',
    });
  }
  if (!c.BIGTABLE_PROJECT && !c.GOOGLE_CLOUD_PROJECT) {
    ctx.addIssue({
      code: 'custom',
      path: ['BIGTABLE_PROJECT'],
      message: 'required with Bigtable (or GOOGLE_CLOUD_PROJECT)',
    });
  }
}

/** The mapping table a configuration names (syncMapping, and the profile function in Bigtable mode). */
export function bigtableTableOptions(c: BigtableSettings): BigtableTableOptions {
  const projectId = c.BIGTABLE_PROJECT ?? c.GOOGLE_CLOUD_PROJECT;
  // requireBigtable has refused such a configuration already.
  if (!projectId || !c.BIGTABLE_INSTANCE) {
    throw new ConfigError('invalid configuration: Bigtable needs BIGTABLE_INSTANCE and a project');
  }
  return {
    projectId,
    instanceId: c.BIGTABLE_INSTANCE,
    tableId: c.BIGTABLE_TABLE,
    appProfileId: c.BIGTABLE_APP_PROFILE,
  };
}

/** The BigQuery options a mapping job's configuration describes (snapshot and sync alike). */
export function bigQueryMappingOptions(config: MappingJobConfig): BigQueryMappingOptions {
  return {
    table: config.MAPPING_TABLE,
    personColumn: config.MAPPING_PERSON_COLUMN,
    idColumn: config.MAPPING_ID_COLUMN,
    typeColumn: config.MAPPING_TYPE_COLUMN,
    partitionColumn: config.MAPPING_PARTITION_COLUMN,
    lookbackDays: config.MAPPING_LOOKBACK_DAYS,
    windowDays: config.MAPPING_WINDOW_DAYS,
    projectId: config.BIGQUERY_PROJECT,
    location: config.BIGQUERY_LOCATION,
    jobTimeoutMs: config.JOB_TIMEOUT_MS,
    pageSize: config.BIGQUERY_PAGE_SIZE,
    accessToken: config.GOOGLE_OAUTH_ACCESS_TOKEN,
  };
}

/**
 * Daily partitions in the mapping, ending at the latest one (1: the latest only): snapshotMapping's
 * snapshot, and in Bigtable mode the window syncMapping writes and the profile function reads
 * (one definition: those two must agree).
 */
const mappingWindowSchema = {
  MAPPING_WINDOW_DAYS: int(1, 3_650).default(1),
};

const profileSchema = commonSchema
  .extend({
    PROFILE_STORE: z.enum(['embedded', 'aerospike']).default('embedded'),
    EMBEDDED_PROFILES_PATH: z.string().min(1).default('.data/demo/profiles.ndjson.gz'),
    SEGMENTS_BIN: z.string().min(1).max(15).default('segments'),
    LINKED_IDS_MAX: int(0, 10_000).default(50),
    MAX_ID_LENGTH: int(8, 4096).default(128),
    REFRESH_INTERVAL_SECS: int(1, 86_400).default(60),
    REFRESH_RETRY_MAX_SECS: int(1, 86_400).default(600),
    MAX_STALENESS_SECS: int(60, 30 * 86_400).default(172_800),
    FIRST_LOAD_TIMEOUT_MS: int(100, 600_000).default(30_000),
    REQUEST_BUDGET_MS: int(50, 60_000).default(1_500),
    RETRY_AFTER_SECS: int(1, 3_600).default(5),
    /** Accepted `x-api-key` values, comma-separated (several while rotating); unset: no key check. */
    API_KEYS: apiKeys,
    /**
     * `x-api-key` values of operators: /health details (versions, sources, memory) go to them
     * only; they pass the API_KEYS check too. Unset: details only outside production (NODE_ENV).
     */
    OPERATOR_API_KEYS: apiKeys,
    /** `production` when deployed (deploy.sh sets it): no /health details without an operator key. */
    NODE_ENV: z.string().optional(),
    AEROSPIKE_HOSTS: z
      .string()
      .regex(
        /^[^\s,:]+(:\d{1,5})?(,[^\s,:]+(:\d{1,5})?)*$/,
        'expected host[:port][,host[:port]...]',
      )
      .default('127.0.0.1:3000'),
    AEROSPIKE_NAMESPACE: z.string().min(1).max(31).default('profiles'),
    AEROSPIKE_USER: z.string().min(1).optional(),
    AEROSPIKE_PASSWORD: z.string().min(1).optional(),
    AEROSPIKE_CONNECT_TIMEOUT_MS: int(50, 60_000).default(1_000),
    AEROSPIKE_SOCKET_TIMEOUT_MS: int(10, 60_000).default(200),
    AEROSPIKE_TOTAL_TIMEOUT_MS: int(10, 60_000).default(500),
    AEROSPIKE_MAX_RETRIES: int(0, 10).default(1),
    /**
     * The largest mapping (its manifest's `memoryBytes`) this instance loads; a larger one is
     * refused and the last good one keeps serving. Unset: derived from the instance's memory.
     */
    MAPPING_MAX_BYTES: int(0, Number.MAX_SAFE_INTEGER).optional(),
    /** Ids per `POST /profiles:batchGet` (the body limit, 64 KiB, is sized for 250 long ids). */
    BATCH_MAX_IDS: int(1, 250).default(100),
    /**
     * Profiles one batch call may read (an id without a type counts once per type it may be);
     * each id's linked ids are capped to stay within it.
     */
    BATCH_MAX_PROFILES: int(1, 25_000).default(2_000),
    /**
     * Bytes of one batch answer (what a connection holds until its caller reads it); results past
     * it are answered 413 `answer_too_large`. Cloud Run answers at most 32 MiB.
     */
    BATCH_MAX_ANSWER_BYTES: int(65_536, 32 * 1024 * 1024).default(4 * 1024 * 1024),
    /** Which requests the function logs itself: `all`, `errors`, or `sample:<rate>` (0..1). */
    LOG_REQUESTS: z
      .string()
      .regex(/^(all|errors|sample:(0(\.\d+)?|1(\.0+)?))$/, 'expected all, errors or sample:<0..1>')
      .default('errors')
      .transform(
        (v): LogRequests =>
          v === 'all' || v === 'errors'
            ? { mode: v }
            : { mode: 'sample', rate: Number(v.slice('sample:'.length)) },
      ),
    /** Requests slower than this are always logged. */
    LOG_SLOW_MS: int(1, 600_000).default(1_000),
    /** Where linked ids come from: the in-memory snapshot, or Bigtable (graphs larger than memory). */
    MAPPING_STORE: z.enum(['snapshot', 'bigtable']).default('snapshot'),
    ...mappingWindowSchema,
    ...bigtableSchema,
  })
  .superRefine((c, ctx) => {
    if (c.MAPPING_STORE === 'bigtable') requireBigtable(c, ctx);
  });

/** Everything the `profile` function reads from its environment. */
export type ProfileConfig = Readonly<z.output<typeof profileSchema>>;

/** Validates the `profile` function's environment once; throws ConfigError naming the variable. */
export function loadProfileConfig(env: Env): ProfileConfig {
  return parseEnv(profileSchema, env);
}

/** The settings every function shares (snapshot location, id types, logging). */
export type CommonConfig = Readonly<z.output<typeof commonSchema>>;

// A BigQuery table or column name as it may appear inside backticks in SQL.
const sqlName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,299}$/, 'letters, digits and _ only');
const tablePath = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{4,61}[a-z0-9]\.[A-Za-z0-9_]{1,1024}\.[A-Za-z0-9_$-]{1,1024}$/,
    'expected project.dataset.table',
  );

const jobSchema = commonSchema.extend({
  MIN_ROWS_RATIO: z.coerce.number().min(0).max(1).default(0.5),
  /** The whole run: source, upload and publication. */
  JOB_TIMEOUT_MS: int(1_000, 3_600_000).default(900_000),
});

const catalogJobSchema = jobSchema.extend({
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

const mappingJobSchema = jobSchema.extend({
  MAPPING_TABLE: tablePath,
  MAPPING_PERSON_COLUMN: sqlName.default('person_id'),
  MAPPING_ID_COLUMN: sqlName.default('user_id'),
  MAPPING_TYPE_COLUMN: sqlName.default('id_type'),
  MAPPING_PARTITION_COLUMN: sqlName.default('partition_date'),
  MAPPING_LOOKBACK_DAYS: int(1, 3_650).default(7),
  ...mappingWindowSchema,
  /** Refuse to publish a mapping that needs more memory than this (0: no limit; deploy.sh sets it). */
  MAPPING_MAX_BYTES: int(0, Number.MAX_SAFE_INTEGER).default(0),
  BIGQUERY_PROJECT: z.string().min(1).optional(),
  BIGQUERY_LOCATION: z.string().min(1).optional(),
  BIGQUERY_PAGE_SIZE: int(100, 100_000).default(20_000),
});

/** Everything the `snapshotMapping` job reads from its environment. */
export type MappingJobConfig = Readonly<z.output<typeof mappingJobSchema>>;

/** Validates the `snapshotMapping` job's environment; throws ConfigError naming the variable. */
export function loadMappingJobConfig(env: Env): MappingJobConfig {
  return parseEnv(mappingJobSchema, env);
}

const pubsubName = (kind: 'topics' | 'subscriptions') =>
  z
    .string()
    .regex(
      new RegExp(
        `^projects/[a-z][a-z0-9-]{4,61}[a-z0-9]/${kind}/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`,
      ),
      `expected projects/<project>/${kind}/<name>`,
    );

const syncJobSchema = mappingJobSchema
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

const syncShardSchema = commonSchema
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

/** Everything the `syncMapping` job reads from its environment. */
export type SyncJobConfig = Readonly<z.output<typeof syncJobSchema>>;

/** Validates the `syncMapping` job's environment; throws ConfigError naming the variable. */
export function loadSyncJobConfig(env: Env): SyncJobConfig {
  return parseEnv(syncJobSchema, env);
}

/** Parses `env` with `schema` into a frozen object, or throws one ConfigError listing each bad variable. */
export function parseEnv<S extends z.ZodType>(schema: S, env: Env): Readonly<z.output<S>> {
  // Empty strings count as unset: deploy tooling often writes VAR= for "no value".
  const cleaned: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  return Object.freeze(result.data);
}

export { commonSchema };

/** The variables each function reads, by entry point (tests hold deploy.sh and the README to them). */
export const FUNCTION_SETTINGS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  profile: Object.keys(profileSchema.shape),
  snapshotCatalog: Object.keys(catalogJobSchema.shape),
  snapshotMapping: Object.keys(mappingJobSchema.shape),
  syncMapping: Object.keys(syncJobSchema.shape),
  syncMappingShard: Object.keys(syncShardSchema.shape),
});
