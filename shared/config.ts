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

/** An environment as functions read it. */
export type Env = Readonly<Record<string, string | undefined>>;

/** An integer setting within [min, max]. */
export const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** A boolean setting, false unless set. */
export const flag = z.stringbool().default(false);

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

/** Where snapshots live: `gs://bucket/prefix` or a local directory (`file:path`, `file:///abs`). */
export const snapshotUriSchema = z
  .string()
  .regex(
    /^(gs:\/\/[a-z0-9][a-z0-9._-]{1,220}(\/.*)?|file:.+)$/,
    'expected gs://bucket[/prefix] or file:<dir>',
  );

/** The settings every function shares (snapshot location, id types, logging). */
export const commonSchema = z.object({
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
export const bigtableSchema = {
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
export function requireBigtable(c: Omit<BigtableSettings, 'BIGTABLE_TABLE'>, ctx: z.RefinementCtx) {
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
export const mappingWindowSchema = {
  MAPPING_WINDOW_DAYS: int(1, 3_650).default(1),
};

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

/** What every scheduled job reads. */
export const jobSchema = commonSchema.extend({
  MIN_ROWS_RATIO: z.coerce.number().min(0).max(1).default(0.5),
  /** The whole run: source, upload and publication. */
  JOB_TIMEOUT_MS: int(1_000, 3_600_000).default(900_000),
});

/**
 * What both mapping jobs read (snapshotMapping's snapshot, syncMapping's Bigtable sync): the
 * BigQuery mapping table, its columns and window.
 */
export const mappingJobSchema = jobSchema.extend({
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

/** What both mapping jobs' settings hold (see mappingJobSchema). */
export type MappingJobConfig = Readonly<z.output<typeof mappingJobSchema>>;

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
