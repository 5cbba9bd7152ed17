import { functionNames, type OpsSettings } from './ops-settings.js';

/** A log-based metric as the Logging API takes it (LogMetric, REST field names). */
export interface LogMetric {
  readonly name: string;
  readonly description: string;
  readonly filter: string;
  readonly metricDescriptor: {
    readonly metricKind: 'DELTA';
    readonly valueType: 'INT64' | 'DISTRIBUTION';
    readonly unit: string;
    readonly displayName: string;
    readonly labels?: readonly {
      readonly key: string;
      readonly valueType: 'STRING';
      readonly description: string;
    }[];
  };
  readonly labelExtractors?: Readonly<Record<string, string>>;
  readonly valueExtractor?: string;
  readonly bucketOptions?: Record<string, unknown>;
}

/** Every log-based metric key deploy.sh may create (in any mode): teardown removes them all. */
export const LOG_METRIC_KEYS = [
  'unavailable-answers',
  'snapshots-served',
  'snapshot-age',
  'stale-snapshots',
  'refresh-failures',
  'job-runs',
  'scheduler-failed-attempts',
  'mapping-near-budget',
  'sync-lag',
  'sync-late',
  'sync-failed-shards',
] as const;
export type LogMetricKey = (typeof LOG_METRIC_KEYS)[number];

/** The metric's name in Logging (also its id in `logging.googleapis.com/user/<name>`). */
export function logMetricName(s: OpsSettings, key: LogMetricKey): string {
  return `${s.NAME_PREFIX}-${key}`;
}

/** The metric type a Monitoring filter names. */
export function logMetricType(s: OpsSettings, key: LogMetricKey): string {
  return `logging.googleapis.com/user/${logMetricName(s, key)}`;
}

/** The backend errors the profile function answers 503 with (README "Errors"). */
export const UNAVAILABLE_CODES = [
  'store_unavailable',
  'mapping_unavailable',
  'snapshots_unavailable',
] as const;
/** Job outcomes that mean the job did its work (a success for the freshness alerts). */
export const SUCCESS_OUTCOMES = ['published', 'unchanged', 'rolled_back', 'synced'] as const;
const JOB_OUTCOMES = [...SUCCESS_OUTCOMES, 'refused', 'conflict', 'failed'] as const;
const ATTEMPT_FINISHED = 'type.googleapis.com/google.cloud.scheduler.logging.AttemptFinished';

/** `FIELD=("a" OR "b")`, the Logging query language's short form of a disjunction. */
function anyOf(field: string, values: readonly string[]): string {
  return values.length === 1
    ? `${field}="${values[0]}"`
    : `${field}=(${values.map((v) => `"${v}"`).join(' OR ')})`;
}

const label = (key: string, description: string) =>
  ({ key, valueType: 'STRING', description }) as const;
const counter = (displayName: string, labels?: ReturnType<typeof label>[]) =>
  ({
    metricKind: 'DELTA',
    valueType: 'INT64',
    unit: '1',
    displayName,
    ...(labels ? { labels } : {}),
  }) as const;

/**
 * The log-based metrics: counts and values taken from the JSON lines the functions write
 * (README "Logs"), each filter narrowed to this deployment's services. Which ones exist depends
 * on MAPPING_STORE; the same key always means the same metric.
 */
export function logMetrics(s: OpsSettings): LogMetric[] {
  const fn = functionNames(s);
  const run = (services: readonly string[]) =>
    `resource.type="cloud_run_revision" AND ${anyOf('resource.labels.service_name', services)}`;
  const profile = run([fn.profile]);
  const jobs = s.MAPPING_STORE === 'bigtable' ? [fn.catalog, fn.sync] : [fn.catalog, fn.mapping];
  const snapshots = s.MAPPING_STORE === 'bigtable' ? ['catalog'] : ['catalog', 'mapping'];
  const snapshotLabel = label('snapshot', 'catalog or mapping');
  const metric = (key: LogMetricKey, rest: Omit<LogMetric, 'name'>): LogMetric => ({
    name: logMetricName(s, key),
    ...rest,
  });

  const metrics: LogMetric[] = [
    metric('unavailable-answers', {
      description:
        'Profile answers 503 because a backend is down: store_unavailable (Aerospike), ' +
        'mapping_unavailable (Bigtable), snapshots_unavailable (no first snapshot). ' +
        'From the request log line (errorCode). Written by deploy.sh.',
      filter: `${profile} AND ${anyOf('jsonPayload.errorCode', UNAVAILABLE_CODES)}`,
      metricDescriptor: counter('Profile API unavailable answers', [
        label('code', 'the error code answered'),
      ]),
      labelExtractors: { code: 'EXTRACT(jsonPayload.errorCode)' },
    }),
    metric('snapshots-served', {
      description:
        'Checks of the snapshot a profile instance serves, by version (one line per refresh ' +
        'check, at most every REFRESH_INTERVAL_SECS per instance). Written by deploy.sh.',
      filter: `${profile} AND ${anyOf('jsonPayload.snapshot', snapshots)} AND jsonPayload.ageSecs>=0`,
      metricDescriptor: counter('Profile API snapshot versions served', [
        snapshotLabel,
        label('version', 'the snapshot version served'),
      ]),
      labelExtractors: {
        snapshot: 'EXTRACT(jsonPayload.snapshot)',
        version: 'EXTRACT(jsonPayload.version)',
      },
    }),
    metric('snapshot-age', {
      description:
        'Age of the snapshot a profile instance serves (since its publication), at each ' +
        'refresh check. Written by deploy.sh.',
      filter: `${profile} AND ${anyOf('jsonPayload.snapshot', snapshots)} AND jsonPayload.ageSecs>=0`,
      metricDescriptor: {
        metricKind: 'DELTA',
        valueType: 'DISTRIBUTION',
        unit: 's',
        displayName: 'Profile API snapshot age',
        labels: [snapshotLabel],
      },
      labelExtractors: { snapshot: 'EXTRACT(jsonPayload.snapshot)' },
      valueExtractor: 'EXTRACT(jsonPayload.ageSecs)',
      // 60 s to about 500 days, each bucket 1.5 times the one before.
      bucketOptions: { exponentialBuckets: { numFiniteBuckets: 30, growthFactor: 1.5, scale: 60 } },
    }),
    metric('stale-snapshots', {
      description:
        'Refresh checks that found the served snapshot older than MAX_STALENESS_SECS ' +
        '(the instance logs stale=true at WARNING). Written by deploy.sh.',
      filter: `${profile} AND ${anyOf('jsonPayload.snapshot', snapshots)} AND jsonPayload.stale=true`,
      metricDescriptor: counter('Profile API stale snapshot checks', [snapshotLabel]),
      labelExtractors: { snapshot: 'EXTRACT(jsonPayload.snapshot)' },
    }),
    metric('refresh-failures', {
      description:
        `Snapshot loads that failed ${s.ALERT_REFRESH_FAILURES} or more times in a row on an ` +
        'instance (ALERT_REFRESH_FAILURES; the last good snapshot keeps serving). Written by deploy.sh.',
      filter:
        `${profile} AND severity=ERROR AND ${anyOf('jsonPayload.snapshot', snapshots)} AND ` +
        `jsonPayload.failures>=${s.ALERT_REFRESH_FAILURES}`,
      metricDescriptor: counter('Profile API failing snapshot refreshes', [snapshotLabel]),
      labelExtractors: { snapshot: 'EXTRACT(jsonPayload.snapshot)' },
    }),
    metric('job-runs', {
      description:
        'Scheduled job runs by job and outcome (published, unchanged, rolled_back, synced, ' +
        'refused, conflict, failed), from each run summary line. Written by deploy.sh.',
      filter: `${run(jobs)} AND ${anyOf('jsonPayload.summary.outcome', JOB_OUTCOMES)}`,
      metricDescriptor: counter('Profile API job runs', [
        label('job', 'snapshotCatalog, snapshotMapping or syncMapping'),
        label('outcome', 'how the run ended'),
      ]),
      labelExtractors: {
        job: 'EXTRACT(jsonPayload.summary.job)',
        outcome: 'EXTRACT(jsonPayload.summary.outcome)',
      },
    }),
    metric('scheduler-failed-attempts', {
      description:
        "Cloud Scheduler attempts of this deployment's jobs that failed (any non-2xx answer or " +
        'no answer before the attempt deadline). Written by deploy.sh.',
      filter:
        `resource.type="cloud_scheduler_job" AND ${anyOf('resource.labels.job_id', jobs)} AND ` +
        `jsonPayload."@type"="${ATTEMPT_FINISHED}" AND severity>=ERROR`,
      metricDescriptor: counter('Profile API failed scheduler attempts'),
    }),
  ];
  if (s.MAPPING_STORE === 'snapshot' && s.MAPPING_MAX_BYTES !== undefined) {
    const near = Math.floor(s.MAPPING_MAX_BYTES * s.ALERT_MAPPING_BUDGET_RATIO);
    metrics.push(
      metric('mapping-near-budget', {
        description:
          `Mapping snapshots of ${near} bytes in memory or more: ALERT_MAPPING_BUDGET_RATIO of ` +
          `the profile instances' MAPPING_MAX_BYTES (${s.MAPPING_MAX_BYTES}). Written by deploy.sh.`,
        filter:
          `${run([fn.mapping])} AND jsonPayload.summary.job="snapshotMapping" AND ` +
          `jsonPayload.summary.memoryBytes>=${near}`,
        metricDescriptor: counter('Profile API mapping near its memory budget'),
      }),
    );
  }
  if (s.MAPPING_STORE === 'bigtable') {
    const syncLines = `${run([fn.sync])} AND jsonPayload.checkpointAgeSecs>=0`;
    metrics.push(
      metric('sync-lag', {
        description:
          'How long ago the Bigtable checkpoint partition ended, at each sync run (what ' +
          "/health's bigtable.ageSecs reports). Written by deploy.sh.",
        filter: syncLines,
        metricDescriptor: {
          metricKind: 'DELTA',
          valueType: 'DISTRIBUTION',
          unit: 's',
          displayName: 'Profile API Bigtable sync lag',
        },
        valueExtractor: 'EXTRACT(jsonPayload.checkpointAgeSecs)',
        // One-hour buckets over a week, then the overflow bucket.
        bucketOptions: { linearBuckets: { numFiniteBuckets: 168, width: 3600, offset: 0 } },
      }),
      metric('sync-late', {
        description:
          `Sync runs whose checkpoint partition ended ${s.ALERT_SYNC_LAG_HOURS} hours ago or ` +
          'more (ALERT_SYNC_LAG_HOURS). Written by deploy.sh.',
        filter: `${run([fn.sync])} AND jsonPayload.checkpointAgeSecs>=${s.ALERT_SYNC_LAG_HOURS * 3600}`,
        metricDescriptor: counter('Profile API late Bigtable syncs'),
      }),
      metric('sync-failed-shards', {
        description:
          'Sync runs that found shards of the version in progress failed (retried past their ' +
          'attempts, or dead-lettered by Pub/Sub): each such run writes one ERROR line with ' +
          'failedShards. Written by deploy.sh.',
        filter: `${run([fn.sync])} AND jsonPayload.failedShards>=1`,
        metricDescriptor: counter('Profile API sync runs with failed shards'),
      }),
    );
  }
  return metrics;
}
