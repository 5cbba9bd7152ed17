import { type LogMetricKey, logMetricType } from './log-metrics.js';
import { functionNames, type OpsSettings } from './ops-settings.js';

/** A dashboard as Cloud Monitoring takes it (monitoring.v1 Dashboard, REST field names). */
export type Dashboard = Readonly<Record<string, unknown>> & { readonly displayName: string };

/** How deploy.sh finds its dashboard again: its display name (dashboards have no user labels of ours). */
export function dashboardName(s: OpsSettings): string {
  return `${s.NAME_PREFIX}: Profile API (deploy.sh)`;
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: Cloud Monitoring fills in a legend template's ${...}.
const REGION_LEGEND = '${resource.labels.location}';

interface Series {
  readonly filter: string;
  readonly aligner: string;
  readonly reducer: string;
  readonly groupBy?: readonly string[];
  readonly period?: number;
  readonly legend?: string;
}

/**
 * The dashboard: requests by status class, latency percentiles, instances and memory (per region
 * when REGIONS has several), the backend error answers, snapshot ages and versions (or the
 * Bigtable sync lag), job runs and failed scheduler attempts.
 */
export function dashboard(s: OpsSettings): Dashboard {
  const fn = functionNames(s);
  const regions = s.PROFILE_REGIONS.length > 1 ? ['resource.label.location'] : [];
  const run = (type: string, service = fn.profile) =>
    `metric.type="run.googleapis.com/${type}" resource.type="cloud_run_revision" resource.label."service_name"="${service}"`;
  const log = (key: LogMetricKey, resource = 'cloud_run_revision') =>
    `metric.type="${logMetricType(s, key)}" resource.type="${resource}"`;
  const chart = (title: string, unit: string, series: Series[], plotType = 'LINE') => ({
    title,
    xyChart: {
      dataSets: series.map((x) => ({
        timeSeriesQuery: {
          timeSeriesFilter: {
            filter: x.filter,
            aggregation: {
              alignmentPeriod: `${x.period ?? 60}s`,
              perSeriesAligner: x.aligner,
              crossSeriesReducer: x.reducer,
              ...(x.groupBy?.length ? { groupByFields: x.groupBy } : {}),
            },
          },
        },
        plotType,
        ...(x.legend ? { legendTemplate: x.legend } : {}),
      })),
      yAxis: { label: unit, scale: 'LINEAR' },
    },
  });
  const percentile = (p: number) => ({
    filter: run('request_latencies'),
    aligner: 'ALIGN_DELTA',
    reducer: `REDUCE_PERCENTILE_${p}`,
    groupBy: regions,
    legend: `p${p}${regions.length ? ` ${REGION_LEGEND}` : ''}`,
  });
  const widgets = [
    chart('Requests by status class', 'requests/s', [
      {
        filter: run('request_count'),
        aligner: 'ALIGN_RATE',
        reducer: 'REDUCE_SUM',
        groupBy: ['metric.label.response_code_class', ...regions],
      },
    ]),
    chart('Latency percentiles', 'ms', [percentile(50), percentile(95), percentile(99)]),
    chart('Instances', 'instances', [
      {
        filter: run('container/instance_count'),
        aligner: 'ALIGN_MAX',
        reducer: 'REDUCE_SUM',
        groupBy: ['metric.label.state', ...regions],
      },
    ]),
    chart('Memory used (p99 across instances)', 'fraction of the limit', [
      {
        filter: run('container/memory/utilizations'),
        aligner: 'ALIGN_PERCENTILE_99',
        reducer: 'REDUCE_MAX',
        groupBy: regions,
      },
    ]),
    chart('Backend error answers (503 by code)', 'answers/s', [
      {
        filter: log('unavailable-answers'),
        aligner: 'ALIGN_RATE',
        reducer: 'REDUCE_SUM',
        groupBy: ['metric.label.code', ...regions],
      },
    ]),
    chart('Snapshot age (oldest served)', 's', [
      {
        filter: log('snapshot-age'),
        aligner: 'ALIGN_PERCENTILE_99',
        reducer: 'REDUCE_MAX',
        groupBy: ['metric.label.snapshot'],
        period: 300,
      },
    ]),
    chart(
      'Snapshot versions served (refresh checks)',
      'checks',
      [
        {
          filter: log('snapshots-served'),
          aligner: 'ALIGN_DELTA',
          reducer: 'REDUCE_SUM',
          groupBy: ['metric.label.snapshot', 'metric.label.version'],
          period: 300,
        },
      ],
      'STACKED_BAR',
    ),
    ...(s.MAPPING_STORE === 'bigtable'
      ? [
          chart('Bigtable sync lag (since the checkpoint partition ended)', 's', [
            {
              filter: log('sync-lag'),
              aligner: 'ALIGN_PERCENTILE_50',
              reducer: 'REDUCE_MAX',
              period: 3600,
            },
          ]),
        ]
      : []),
    chart(
      'Job runs by outcome',
      'runs',
      [
        {
          filter: log('job-runs'),
          aligner: 'ALIGN_DELTA',
          reducer: 'REDUCE_SUM',
          groupBy: ['metric.label.job', 'metric.label.outcome'],
          period: 3600,
        },
      ],
      'STACKED_BAR',
    ),
    chart(
      'Failed scheduler attempts',
      'attempts',
      [
        {
          filter: log('scheduler-failed-attempts', 'cloud_scheduler_job'),
          aligner: 'ALIGN_DELTA',
          reducer: 'REDUCE_SUM',
          groupBy: ['resource.label.job_id'],
          period: 3600,
        },
      ],
      'STACKED_BAR',
    ),
  ];
  // Two charts a row on the 48-column mosaic grid.
  const tiles = widgets.map((widget, i) => ({
    xPos: (i % 2) * 24,
    yPos: Math.floor(i / 2) * 16,
    width: 24,
    height: 16,
    widget,
  }));
  return {
    displayName: dashboardName(s),
    mosaicLayout: { columns: 48, tiles },
  };
}
