import { type LogMetricKey, logMetricType, SUCCESS_OUTCOMES } from './log-metrics.js';
import { functionNames, type OpsSettings, ownLabels } from './ops-settings.js';
import { sloName, uptimeHosts } from './service-levels.js';

/** An alerting policy as Cloud Monitoring takes it (AlertPolicy, REST field names). */
export type AlertPolicy = Readonly<Record<string, unknown>> & {
  readonly displayName: string;
  readonly userLabels: Readonly<Record<string, string>>;
};

/** Every alert deploy.sh may create (in any mode), by key: its runbook title in the README. */
export const ALERTS = {
  'error-ratio': 'Profile 5xx ratio',
  'latency-p99': 'Profile p99 latency',
  memory: 'Profile memory near its limit',
  'backend-unavailable': 'Backend unavailable answers',
  'stale-snapshot': 'Stale snapshot served',
  'refresh-failing': 'Snapshot refresh failing',
  'catalog-job-success': 'No successful catalog run',
  'mapping-job-success': 'No successful mapping run',
  'sync-job-success': 'No successful sync run',
  'job-refused': 'Job refused',
  'scheduler-failed-attempts': 'Scheduler attempts failing',
  'mapping-near-budget': 'Mapping near its memory budget',
  'sync-lag': 'Bigtable sync behind',
  'sync-failed-shards': 'Bigtable sync shards failing',
  uptime: 'Health check failing',
  'slo-availability-burn': 'Availability SLO burning',
  'slo-latency-burn': 'Latency SLO burning',
} as const;
export type AlertKey = keyof typeof ALERTS;

const RUN_REVISION = 'resource.type="cloud_run_revision"';

/** Monitoring filter terms joined by AND. */
const and = (...terms: string[]) => terms.join(' AND ');
const oneOf = (field: string, values: readonly string[]) =>
  `${field}=one_of(${values.map((v) => `"${v}"`).join(', ')})`;
const secs = (n: number) => `${n}s`;

/**
 * The alerting policies for `s`, one condition each except the SLO burn rates (fast and slow).
 * None without a notification channel: deploy.sh then says alerts are off.
 */
export function alertPolicies(s: OpsSettings): AlertPolicy[] {
  if (s.ALERT_CHANNEL_NAMES.length === 0) return [];
  const fn = functionNames(s);
  const service = `resource.label.service_name="${fn.profile}"`;
  const runMetric = (type: string) =>
    and(`metric.type="run.googleapis.com/${type}"`, RUN_REVISION, service);
  const logMetric = (key: LogMetricKey, resource = 'cloud_run_revision') =>
    and(`metric.type="${logMetricType(s, key)}"`, `resource.type="${resource}"`);
  const byRegion = ['resource.label.location'];
  const delta = (period: number, groupBy: string[] = []) => ({
    alignmentPeriod: secs(period),
    perSeriesAligner: 'ALIGN_DELTA',
    crossSeriesReducer: 'REDUCE_SUM',
    ...(groupBy.length ? { groupByFields: groupBy } : {}),
  });
  const policy = (
    key: AlertKey,
    summary: string,
    conditions: Record<string, unknown>[],
    runbook: { meaning: string; confirm: string; act: string },
  ): AlertPolicy => ({
    displayName: `${s.NAME_PREFIX}: ${ALERTS[key]}`,
    documentation: {
      mimeType: 'text/markdown',
      subject: `${s.NAME_PREFIX}: ${ALERTS[key]}`,
      content: [
        `**${summary}**`,
        '',
        `What it means: ${runbook.meaning}`,
        '',
        `Confirm: ${runbook.confirm}`,
        '',
        `What to do: ${runbook.act}`,
        '',
        `Runbook: README.md, "When an alert fires", "${ALERTS[key]}". Created by deploy.sh.`,
      ].join('\n'),
    },
    userLabels: ownLabels(s, key),
    combiner: 'OR',
    enabled: true,
    notificationChannels: s.ALERT_CHANNEL_NAMES,
    conditions,
  });
  const threshold = (displayName: string, body: Record<string, unknown>) => ({
    displayName,
    conditionThreshold: body,
  });
  const logsOf = (service: string) =>
    `logs: resource.type="cloud_run_revision" AND resource.labels.service_name="${service}"`;

  const policies: AlertPolicy[] = [
    policy(
      'error-ratio',
      `More than ${s.ALERT_5XX_RATIO * 100}% of the profile function's answers were 5xx over 5 minutes (ALERT_5XX_RATIO).`,
      [
        threshold(`5xx ratio above ${s.ALERT_5XX_RATIO}`, {
          filter: and(runMetric('request_count'), 'metric.label.response_code_class="5xx"'),
          denominatorFilter: runMetric('request_count'),
          aggregations: [delta(300, byRegion)],
          denominatorAggregations: [delta(300, byRegion)],
          comparison: 'COMPARISON_GT',
          thresholdValue: s.ALERT_5XX_RATIO,
          duration: '60s',
        }),
      ],
      {
        meaning: 'callers get errors: 503 while a backend is down, 500 for a bug.',
        confirm: `${logsOf(fn.profile)} AND httpRequest.status>=500, and each line's errorCode.`,
        act: 'follow the backend alert that fires with it; for `internal`, read the stack in the log line and roll back the last deploy.',
      },
    ),
    policy(
      'latency-p99',
      `The profile function's p99 latency was above ${s.ALERT_LATENCY_P99_MS} ms for 5 minutes (ALERT_LATENCY_P99_MS).`,
      [
        threshold(`p99 latency above ${s.ALERT_LATENCY_P99_MS} ms`, {
          filter: runMetric('request_latencies'),
          aggregations: [
            {
              alignmentPeriod: '300s',
              perSeriesAligner: 'ALIGN_DELTA',
              crossSeriesReducer: 'REDUCE_PERCENTILE_99',
              groupByFields: byRegion,
            },
          ],
          comparison: 'COMPARISON_GT',
          thresholdValue: s.ALERT_LATENCY_P99_MS,
          duration: '300s',
        }),
      ],
      {
        meaning:
          'the slowest requests approach the Aerospike deadline (AEROSPIKE_TOTAL_TIMEOUT_MS) and the request budget.',
        confirm: `the Server-Timing phases of slow requests: ${logsOf(fn.profile)} AND jsonPayload.phases.total>=${s.ALERT_LATENCY_P99_MS}.`,
        act: 'if the store phase dominates, look at the Aerospike cluster and AEROSPIKE_MAX_CONNS_PER_NODE; if instances are saturated, raise PROFILE_MAX_INSTANCES or lower PROFILE_CONCURRENCY.',
      },
    ),
    policy(
      'memory',
      `A profile instance used more than ${s.ALERT_MEMORY_RATIO * 100}% of its memory for 5 minutes (ALERT_MEMORY_RATIO).`,
      [
        threshold(`memory above ${s.ALERT_MEMORY_RATIO}`, {
          filter: runMetric('container/memory/utilizations'),
          aggregations: [
            {
              alignmentPeriod: '300s',
              perSeriesAligner: 'ALIGN_PERCENTILE_99',
              crossSeriesReducer: 'REDUCE_MAX',
              groupByFields: byRegion,
            },
          ],
          comparison: 'COMPARISON_GT',
          thresholdValue: s.ALERT_MEMORY_RATIO,
          duration: '300s',
        }),
      ],
      {
        meaning:
          'the next mapping refresh (which holds the old and the new mapping) may run out of memory.',
        confirm:
          '/health (operator key): memory.rssBytes against memory.mappingBudgetBytes and the instance size.',
        act: 'raise MAPPING_IDS (PROFILE_MEMORY follows) and redeploy; MAPPING_STORE=bigtable when the mapping outgrows instances.',
      },
    ),
    policy(
      'backend-unavailable',
      `More than ${s.ALERT_BACKEND_ERRORS} answers in 5 minutes were 503 for one backend (ALERT_BACKEND_ERRORS).`,
      [
        threshold(`more than ${s.ALERT_BACKEND_ERRORS} unavailable answers in 5 min`, {
          filter: logMetric('unavailable-answers'),
          aggregations: [delta(300, ['metric.label.code'])],
          comparison: 'COMPARISON_GT',
          thresholdValue: s.ALERT_BACKEND_ERRORS,
          duration: '0s',
        }),
      ],
      {
        meaning:
          'store_unavailable: Aerospike did not answer in time; mapping_unavailable: Bigtable did not; snapshots_unavailable: instances have no first snapshot.',
        confirm: `${logsOf(fn.profile)} AND jsonPayload.errorCode="store_unavailable" (or the code named), and /health's store or bigtable section.`,
        act: 'check the cluster and the VPC path (connector or Direct VPC); for snapshots, the refresh alert and the jobs.',
      },
    ),
  ];
  const snapshots = s.MAPPING_STORE === 'bigtable' ? 'the catalog' : 'the catalog or the mapping';
  policies.push(
    policy(
      'stale-snapshot',
      `An instance served ${snapshots} older than MAX_STALENESS_SECS (${s.MAX_STALENESS_SECS} s).`,
      [
        threshold('stale snapshot served', {
          filter: logMetric('stale-snapshots'),
          aggregations: [delta(600, ['metric.label.snapshot'])],
          comparison: 'COMPARISON_GT',
          thresholdValue: 0,
          duration: '0s',
        }),
      ],
      {
        meaning:
          'no newer snapshot was published (or the instance cannot load it); /health says degraded.',
        confirm: `${logsOf(fn.profile)} AND jsonPayload.stale=true; /health snapshots.<kind>.ageSecs.`,
        act: 'look at the job alerts (no successful run, refused, failed attempts); a catalog that has not changed also ages: unchanged runs keep the old version.',
      },
    ),
    policy(
      'refresh-failing',
      `A profile instance failed to load a snapshot ${s.ALERT_REFRESH_FAILURES} times in a row (ALERT_REFRESH_FAILURES).`,
      [
        threshold('snapshot refresh failing', {
          filter: logMetric('refresh-failures'),
          aggregations: [
            delta(Math.max(1200, Math.ceil((2 * s.REFRESH_RETRY_MAX_SECS) / 60) * 60), [
              'metric.label.snapshot',
            ]),
          ],
          comparison: 'COMPARISON_GT',
          thresholdValue: 0,
          duration: '0s',
        }),
      ],
      {
        meaning: 'instances keep serving their last good snapshot but cannot take the new one.',
        confirm: `${logsOf(fn.profile)} AND jsonPayload.snapshot="mapping" AND severity=ERROR: the err and detail fields; /health lastError and refused.`,
        act: 'SnapshotTooLargeError: the mapping outgrew MAPPING_MAX_BYTES, raise MAPPING_IDS and redeploy; checksum or rows errors: roll the snapshot back (./deploy.sh rollback); permission errors: the profile service account lost its bucket grant (deploy again).',
      },
    ),
  );
  const success = (key: AlertKey, job: string, hours: number, setting: string, act: string) =>
    policy(
      key,
      `No successful ${job} run in ${hours} hours (${setting}).`,
      [
        threshold(`no successful ${job} run in ${hours} h`, {
          filter: and(
            logMetric('job-runs'),
            `metric.label.job="${job}"`,
            oneOf('metric.label.outcome', SUCCESS_OUTCOMES),
          ),
          // The window and the minute it must hold stay within Cloud Monitoring's 25 hours.
          aggregations: [delta(hours * 3600 - 60)],
          comparison: 'COMPARISON_LT',
          thresholdValue: 1,
          duration: '60s',
          evaluationMissingData: 'EVALUATION_MISSING_DATA_ACTIVE',
        }),
      ],
      {
        meaning:
          'the job is failing, refused, paused (a rollback pauses it) or no longer scheduled.',
        confirm: `gcloud scheduler jobs describe <job> --location=REGION (state, status); ${logsOf(job === 'snapshotCatalog' ? fn.catalog : job === 'syncMapping' ? fn.sync : fn.mapping)}.`,
        act,
      },
    );
  policies.push(
    success(
      'catalog-job-success',
      'snapshotCatalog',
      s.ALERT_CATALOG_SUCCESS_HOURS,
      'ALERT_CATALOG_SUCCESS_HOURS',
      'resume a paused job once the source is right (gcloud scheduler jobs resume); run it now with gcloud scheduler jobs run.',
    ),
  );
  if (s.MAPPING_STORE === 'snapshot') {
    policies.push(
      success(
        'mapping-job-success',
        'snapshotMapping',
        s.ALERT_MAPPING_SUCCESS_HOURS,
        'ALERT_MAPPING_SUCCESS_HOURS',
        'resume a paused job once the source is right; ./deploy.sh verify checks the query against the table.',
      ),
    );
  } else {
    policies.push(
      success(
        'sync-job-success',
        'syncMapping',
        s.ALERT_SYNC_SUCCESS_HOURS,
        'ALERT_SYNC_SUCCESS_HOURS',
        'resume the job; a run that keeps failing says why in its summary (outcome failed, reason).',
      ),
    );
  }
  policies.push(
    policy(
      'job-refused',
      'A scheduled job refused to publish (answered 200 refused: the scheduler does not retry).',
      [
        threshold('job refused', {
          filter: and(logMetric('job-runs'), 'metric.label.outcome="refused"'),
          aggregations: [delta(3600, ['metric.label.job'])],
          comparison: 'COMPARISON_GT',
          thresholdValue: 0,
          duration: '0s',
        }),
      ],
      {
        meaning:
          'the source is empty, shrank past MIN_ROWS_RATIO, outgrew MAPPING_MAX_BYTES, or the query is wrong: the current snapshot stays current.',
        confirm:
          'the run summary: jsonPayload.summary.outcome="refused" and jsonPayload.summary.reason.',
        act: 'fix the source or the setting it names; publish a deliberate shrink with {"force": true} (gcloud functions call); over budget: raise MAPPING_IDS and redeploy.',
      },
    ),
    policy(
      'scheduler-failed-attempts',
      `A job's scheduler attempts failed ${s.ALERT_JOB_FAILED_ATTEMPTS} times or more within an hour (ALERT_JOB_FAILED_ATTEMPTS).`,
      [
        threshold('scheduler attempts failing', {
          filter: logMetric('scheduler-failed-attempts', 'cloud_scheduler_job'),
          aggregations: [delta(3600, ['resource.label.job_id'])],
          comparison: 'COMPARISON_GT',
          thresholdValue: s.ALERT_JOB_FAILED_ATTEMPTS - 1,
          duration: '0s',
        }),
      ],
      {
        meaning:
          'the job answered 5xx (503 source_unavailable, 504 timeout, 500 internal or misconfigured) and the scheduler retries it.',
        confirm:
          'logs: resource.type="cloud_scheduler_job" AND severity>=ERROR; then the job\'s own ERROR lines.',
        act: '503: MongoDB, BigQuery or GCS is down; 504: raise JOB_TIMEOUT; misconfigured: fix the variable named and redeploy.',
      },
    ),
  );
  if (s.MAPPING_STORE === 'snapshot' && s.MAPPING_MAX_BYTES !== undefined) {
    policies.push(
      policy(
        'mapping-near-budget',
        `The published mapping uses ${s.ALERT_MAPPING_BUDGET_RATIO * 100}% or more of MAPPING_MAX_BYTES (${s.MAPPING_MAX_BYTES}).`,
        [
          threshold('mapping near its memory budget', {
            filter: logMetric('mapping-near-budget'),
            aggregations: [delta(3600)],
            comparison: 'COMPARISON_GT',
            thresholdValue: 0,
            duration: '0s',
          }),
        ],
        {
          meaning:
            'a little more growth and the mapping job refuses to publish (and instances would refuse to load it).',
          confirm:
            'the mapping run summary: jsonPayload.summary.memoryBytes against MAPPING_MAX_BYTES.',
          act: "raise MAPPING_IDS (the profile function's memory follows) and redeploy before it is refused.",
        },
      ),
    );
  }
  if (s.MAPPING_STORE === 'bigtable') {
    policies.push(
      policy(
        'sync-lag',
        `The Bigtable checkpoint partition ended more than ${s.ALERT_SYNC_LAG_HOURS} hours ago (ALERT_SYNC_LAG_HOURS).`,
        [
          threshold('Bigtable sync behind', {
            filter: logMetric('sync-late'),
            aggregations: [delta(7200)],
            comparison: 'COMPARISON_GT',
            thresholdValue: 0,
            duration: '0s',
          }),
        ],
        {
          meaning:
            'the sync runs but no newer version lands (its shards still in progress, failed or dead-lettered), or it fails before one does.',
          confirm: `${logsOf(fn.sync)}: jsonPayload.summary.version (the current version's partition) and checkpointAgeSecs; /health bigtable.lastSyncedPartition.`,
          act: 'check the BigQuery table receives partitions and the sync\'s shards land (the failed-shards alert); write the version again with gcloud functions call <sync> --data={"resync":true}.',
        },
      ),
      policy(
        'sync-failed-shards',
        'Sync runs find shards of the version in progress failed (their attempts used up, or dead-lettered).',
        [
          threshold('Bigtable sync shards failing', {
            filter: logMetric('sync-failed-shards'),
            aggregations: [delta(3600)],
            comparison: 'COMPARISON_GT',
            thresholdValue: 0,
            duration: '0s',
          }),
        ],
        {
          meaning:
            'the version in progress cannot land: readers keep the current version, and the mapping stops advancing until the shards land.',
          confirm: `${logsOf(fn.sync)}: the ERROR line "shard(s) of version ... failed" (failedShards, the first shard's error); /health bigtable.syncInProgress.failedShards.`,
          act: 'fix what the error names (BigQuery or Bigtable unavailable, a quota, a shard worker crash in its own logs); the next sync run sends the failed shards again.',
        },
      ),
    );
  }
  for (const host of uptimeHosts(s)) {
    policies.push(
      policy(
        'uptime',
        `GET /health on ${host} failed from more than one checker region.`,
        [
          threshold(`/health on ${host} failing`, {
            filter: and(
              'metric.type="monitoring.googleapis.com/uptime_check/check_passed"',
              'resource.type="uptime_url"',
              `resource.label.host="${host}"`,
            ),
            aggregations: [
              {
                alignmentPeriod: '1200s',
                perSeriesAligner: 'ALIGN_NEXT_OLDER',
                crossSeriesReducer: 'REDUCE_COUNT_FALSE',
                groupByFields: ['metric.label.check_id'],
              },
            ],
            comparison: 'COMPARISON_GT',
            thresholdValue: 1,
            duration: '60s',
          }),
        ],
        {
          meaning:
            '/health answers 503 (no snapshot yet, or the profile store is down) or nothing at all.',
          confirm:
            "the uptime check's latest results in Cloud Monitoring; /health with an operator key.",
          act: "see the backend and snapshot alerts; nothing answering: the function's revisions and, with EDGE=lb, the load balancer (./deploy.sh verify).",
        },
      ),
    );
    break; // One policy covers every check of the host (per region with EDGE=lb).
  }
  for (const [key, slo, what] of [
    ['slo-availability-burn', 'availability', 'availability'],
    ['slo-latency-burn', 'latency', 'latency'],
  ] as const) {
    const burn = (window: number) =>
      `select_slo_burn_rate("${sloName(s, slo)}", "${secs(window)}")`;
    policies.push(
      policy(
        key,
        `The ${what} SLO's error budget burns fast: 14.4x over an hour or 6x over 6 hours.`,
        [
          threshold('fast burn: 14.4x over 1 h', {
            filter: burn(3600),
            comparison: 'COMPARISON_GT',
            thresholdValue: 14.4,
            duration: '0s',
          }),
          threshold('slow burn: 6x over 6 h', {
            filter: burn(21_600),
            comparison: 'COMPARISON_GT',
            thresholdValue: 6,
            duration: '0s',
          }),
        ],
        {
          meaning:
            slo === 'availability'
              ? `at this rate the ${s.SLO_PERIOD_DAYS}-day budget (SLO_AVAILABILITY ${s.SLO_AVAILABILITY}) is gone within days.`
              : `more than ${((1 - s.SLO_LATENCY_GOAL) * 100).toFixed(1)}% of requests take over SLO_LATENCY_MS (${s.SLO_LATENCY_MS} ms), fast enough to spend the budget within days.`,
          confirm: 'the SLO in Cloud Monitoring, Services; the 5xx ratio and p99 latency alerts.',
          act: 'treat as the 5xx or latency alert; stop risky deploys until the budget recovers.',
        },
      ),
    );
  }
  return policies;
}
