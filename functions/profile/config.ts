import { z } from 'zod';
import {
  bigtableSchema,
  commonSchema,
  type Env,
  int,
  mappingWindowSchema,
  parseEnv,
  requireBigtable,
} from '../../shared/config.js';
import {
  checkAerospike,
  profileStoreSchema,
} from '../../shared/profiles/profile-store-settings.js';

/** Which requests the profile function logs itself (LOG_REQUESTS). */
export type LogRequests =
  | { readonly mode: 'all' }
  | { readonly mode: 'errors' }
  | { readonly mode: 'sample'; readonly rate: number };

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

/** The `profile` function's settings: the common ones, the profile store's, its own. */
export const profileSchema = commonSchema
  .extend({
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
    ...profileStoreSchema,
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
    if (c.PROFILE_STORE === 'aerospike') checkAerospike(c, ctx);
  });

/** Everything the `profile` function reads from its environment. */
export type ProfileConfig = Readonly<z.output<typeof profileSchema>>;

/** Validates the `profile` function's environment once; throws ConfigError naming the variable. */
export function loadProfileConfig(env: Env): ProfileConfig {
  return parseEnv(profileSchema, env);
}
