import { z } from 'zod';
import { parseEnv } from '../config.js';

type Env = Readonly<Record<string, string | undefined>>;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const ratio = (min: number, max: number) => z.coerce.number().gt(min).lt(max);
const list = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  );
const name = z.string().regex(/^[a-z][a-z0-9-]{0,48}[a-z0-9]$/, 'lowercase letters, digits and -');

/**
 * What deploy.sh's monitoring is built from: where the service runs (deploy.sh passes what it
 * derived: names, regions, the channels it resolved) and the operator's thresholds (settings
 * with defaults; README "When an alert fires" argues each default).
 */
const opsSchema = z
  .object({
    PROJECT_ID: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a project id'),
    NAME_PREFIX: name,
    /** The regions running the profile function (REGIONS, else REGION). */
    PROFILE_REGIONS: list.refine((r) => r.length > 0, 'at least one region'),
    MAPPING_STORE: z.enum(['snapshot', 'bigtable']).default('snapshot'),
    EDGE: z.enum(['', 'lb']).default(''),
    DOMAIN: z.string().optional(),
    EDGE_IAP: z.stringbool().default(false),
    /** Whether the profile function requires x-api-key (API_KEYS_SECRET is set). */
    API_KEYS_ON: z.stringbool().default(false),
    PROFILE_ALLOW_UNAUTHENTICATED: z.stringbool().default(false),
    /** The profile function's run.app host in REGION (deploy.sh reads it after the deploy). */
    UPTIME_HOST: z.string().optional(),
    /** A key for /health when the function requires one (from UPTIME_API_KEY_SECRET). */
    UPTIME_API_KEY: z.string().optional(),
    /** Notification channels the alerts go to: full names, resolved by deploy.sh. */
    ALERT_CHANNEL_NAMES: list,
    /** The mapping budget of a profile instance (snapshot mode), as deploy.sh sized it. */
    MAPPING_MAX_BYTES: int(1, Number.MAX_SAFE_INTEGER).optional(),
    // The profile function's own settings the alerts depend on (its defaults).
    MAX_STALENESS_SECS: int(60, 30 * 86_400).default(172_800),
    REFRESH_RETRY_MAX_SECS: int(1, 86_400).default(600),

    ALERT_5XX_RATIO: ratio(0, 1).default(0.05),
    ALERT_LATENCY_P99_MS: int(1, 600_000).default(500),
    ALERT_MEMORY_RATIO: ratio(0, 1).default(0.9),
    ALERT_BACKEND_ERRORS: int(0, 1_000_000).default(10),
    ALERT_REFRESH_FAILURES: int(1, 1_000).default(10),
    // An alert's window plus the minute it must hold stays within the 25 hours Cloud Monitoring
    // evaluates a condition over.
    ALERT_CATALOG_SUCCESS_HOURS: int(1, 25).default(3),
    ALERT_MAPPING_SUCCESS_HOURS: int(1, 25).default(25),
    ALERT_SYNC_SUCCESS_HOURS: int(1, 25).default(3),
    ALERT_SYNC_LAG_HOURS: int(1, 24 * 30).default(48),
    ALERT_JOB_FAILED_ATTEMPTS: int(1, 100).default(2),
    ALERT_MAPPING_BUDGET_RATIO: ratio(0, 1).default(0.9),
    SLO_AVAILABILITY: ratio(0, 1).default(0.999),
    SLO_LATENCY_MS: int(1, 600_000).default(500),
    SLO_LATENCY_GOAL: ratio(0, 1).default(0.99),
    SLO_PERIOD_DAYS: int(1, 30).default(28),
    UPTIME_PERIOD_MINS: z.enum(['1', '5', '10', '15']).default('5').transform(Number),
  })
  .superRefine((s, ctx) => {
    if (s.EDGE === 'lb' && !s.DOMAIN) {
      ctx.addIssue({ code: 'custom', path: ['DOMAIN'], message: 'required with EDGE=lb' });
    }
  });

/** The monitoring settings, validated; a bad one is a ConfigError naming the variable. */
export type OpsSettings = Readonly<z.output<typeof opsSchema>>;

/** Reads the monitoring settings from `env` (deploy.sh's environment plus what it derived). */
export function loadOpsSettings(env: Env): OpsSettings {
  return parseEnv(opsSchema, env);
}

/** The settings an operator sets (with their defaults), for --help and the README. */
export const OPS_THRESHOLDS = Object.freeze(
  Object.keys(opsSchema.shape).filter(
    (k) => (k.startsWith('ALERT_') && k !== 'ALERT_CHANNEL_NAMES') || k.startsWith('SLO_'),
  ),
);

/** The Cloud Run services (function names) deploy.sh deploys for `s`. */
export function functionNames(s: OpsSettings) {
  const p = s.NAME_PREFIX;
  return {
    profile: p,
    catalog: `${p}-snapshot-catalog`,
    mapping: `${p}-snapshot-mapping`,
    sync: `${p}-sync-mapping`,
  } as const;
}

/** Labels on everything deploy.sh creates for monitoring: how teardown finds it. */
export function ownLabels(s: OpsSettings, key?: string): Record<string, string> {
  return {
    'managed-by': 'deploy-sh',
    deployment: s.NAME_PREFIX,
    ...(key ? { resource: key } : {}),
  };
}
