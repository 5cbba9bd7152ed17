import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { ALERTS } from '../../shared/ops/alert-policies.js';
import { LOG_METRIC_KEYS, logMetricType } from '../../shared/ops/log-metrics.js';
import { wantedOps } from '../../shared/ops/ops-plan.js';
import { loadOpsSettings, type OpsSettings } from '../../shared/ops/ops-settings.js';
import { sloName } from '../../shared/ops/service-levels.js';
import {
  type MessageSchemas,
  messageProblems,
  monitoringProtos,
  protoSchemas,
  sdkSchemas,
} from '../helpers/message-schema.js';
import { realGcloud } from '../helpers/stub-cli/deploy-sandbox.js';

// Every definition deploy.sh sends to Cloud Monitoring and Logging, checked against Google's own
// message types: monitoring.v3 from @google-cloud/monitoring's protos, the dashboard (monitoring.v1)
// and the log-based metric (logging.v2) from google-cloud-sdk's generated messages.
const ROOT = new URL('../..', import.meta.url).pathname;
const V3 = 'google.monitoring.v3';
const monitoring = protoSchemas(
  monitoringProtos(),
  `${V3}.AlertPolicy`,
  `${V3}.Service`,
  `${V3}.ServiceLevelObjective`,
  `${V3}.UptimeCheckConfig`,
);
const fixture = (file: string) =>
  JSON.parse(readFileSync(`${ROOT}test/fixtures/${file}`, 'utf8')) as MessageSchemas & {
    source: string;
  };
const dashboards = fixture('monitoring-v1-dashboard.schema.json');
const logging = fixture('logging-v2-log-metric.schema.json');

const BASE = {
  PROJECT_ID: 'demo-proj',
  NAME_PREFIX: 'profile-api',
  PROFILE_REGIONS: 'europe-west1',
  UPTIME_HOST: 'profile-api-abc123-ew.a.run.app',
  MAPPING_MAX_BYTES: '513820024',
  ALERT_CHANNEL_NAMES: 'projects/demo-proj/notificationChannels/123',
};
const SETTINGS: Record<string, Record<string, string | undefined>> = {
  'snapshot mode, one region': BASE,
  'Bigtable mode, two regions behind the load balancer with API keys': {
    ...BASE,
    MAPPING_STORE: 'bigtable',
    EDGE: 'lb',
    DOMAIN: 'api.example.com',
    PROFILE_REGIONS: 'europe-west1,us-central1',
    API_KEYS_ON: 'true',
    UPTIME_API_KEY: 'uptime-key-0123456789abcdef',
    MAPPING_MAX_BYTES: undefined,
  },
  'no notification channel': { ...BASE, ALERT_CHANNEL_NAMES: '' },
};

function problemsOf(s: OpsSettings): string[] {
  const want = wantedOps(s);
  const found: string[] = [];
  const add = (what: string, problems: string[]) =>
    found.push(...problems.map((p) => `${what}: ${p}`));
  for (const p of want.policies)
    add(p.displayName, messageProblems(monitoring, `${V3}.AlertPolicy`, p));
  add('service', messageProblems(monitoring, `${V3}.Service`, want.service));
  for (const [id, slo] of Object.entries(want.slos)) {
    add(`slo ${id}`, messageProblems(monitoring, `${V3}.ServiceLevelObjective`, slo));
  }
  for (const u of want.uptimeChecks) {
    add(String(u.displayName), messageProblems(monitoring, `${V3}.UptimeCheckConfig`, u));
  }
  add('dashboard', messageProblems(dashboards, 'monitoring.Dashboard', want.dashboard));
  for (const m of want.metrics) add(m.name, messageProblems(logging, 'logging.LogMetric', m));
  return found;
}

describe('the monitoring definitions', () => {
  it.each(Object.entries(SETTINGS))('are valid messages of their APIs: %s', (_name, env) => {
    const s = loadOpsSettings(env);
    expect(problemsOf(s)).toEqual([]);
    const want = wantedOps(s);
    expect(want.metrics.length).toBeGreaterThan(6);
    const policies = env.MAPPING_STORE === 'bigtable' ? 15 : 14;
    expect(want.policies.length).toBe(env.ALERT_CHANNEL_NAMES ? policies : 0);
  });

  it('fail the check when a field is misspelt, mistyped or not one of its values', () => {
    const s = loadOpsSettings(BASE);
    const want = wantedOps(s);
    const [policy] = want.policies;
    const [condition] = (policy?.conditions ?? []) as Record<string, Record<string, unknown>>[];
    const misspelt = {
      ...policy,
      conditions: [
        {
          ...condition,
          conditionThreshold: { ...condition?.conditionThreshold, thresholdValu: 1 },
        },
      ],
    };
    expect(messageProblems(monitoring, `${V3}.AlertPolicy`, misspelt)).toEqual([
      'conditions[0].conditionThreshold.thresholdValu: unknown field of google.monitoring.v3.AlertPolicy.Condition.MetricThreshold',
    ]);
    expect(
      messageProblems(monitoring, `${V3}.ServiceLevelObjective`, {
        ...want.slos.availability,
        goal: '0.999',
      }),
    ).toEqual(['goal: expected a number']);
    expect(
      messageProblems(monitoring, `${V3}.UptimeCheckConfig`, {
        ...want.uptimeChecks[0],
        period: '5m',
      }),
    ).toEqual(['period: expected a duration such as "60s"']);
    const board = JSON.parse(
      JSON.stringify(want.dashboard).replace(
        '"perSeriesAligner":"ALIGN_RATE"',
        '"perSeriesAligner":"ALIGN_RATES"',
      ),
    );
    expect(messageProblems(dashboards, 'monitoring.Dashboard', board)).toHaveLength(1);
    expect(
      messageProblems(dashboards, 'monitoring.Dashboard', { ...want.dashboard, mosaicLayot: {} }),
    ).toEqual(['mosaicLayot: unknown field of monitoring.Dashboard']);
    const [metric] = want.metrics;
    expect(
      messageProblems(logging, 'logging.LogMetric', { ...metric, labelExtractor: {} }),
    ).toEqual(['labelExtractor: unknown field of logging.LogMetric']);
  });

  it('use the dashboard and log-metric message types of the installed google-cloud-sdk', (ctx) => {
    const real = realGcloud();
    if (!real)
      ctx.skip('gcloud is not installed on this machine: the fixtures are not compared with it');
    const gcloud = real?.gcloud ?? '';
    for (const [file, module, root] of [
      [
        'monitoring-v1-dashboard.schema.json',
        'googlecloudsdk.generated_clients.apis.monitoring.v1.monitoring_v1_messages',
        'Dashboard',
      ],
      [
        'logging-v2-log-metric.schema.json',
        'googlecloudsdk.generated_clients.apis.logging.v2.logging_v2_messages',
        'LogMetric',
      ],
    ] as const) {
      const installed = sdkSchemas(gcloud, module, root);
      // Every type and field of the fixture is there, of the same kind; a newer SDK may add more.
      expect(missingFrom(fixture(file), installed), file).toEqual([]);
    }
  }, 60_000);

  it('name only metrics that exist: their own log-based metrics, Cloud Run and uptime metrics', () => {
    for (const env of Object.values(SETTINGS)) {
      const s = loadOpsSettings(env);
      const want = wantedOps(s);
      const own = new Set(want.metrics.map((m) => `logging.googleapis.com/user/${m.name}`));
      expect(
        want.metrics.every((m) =>
          LOG_METRIC_KEYS.some(
            (k) => logMetricType(s, k) === `logging.googleapis.com/user/${m.name}`,
          ),
        ),
      ).toBe(true);
      const builtIn =
        /^(run\.googleapis\.com\/(request_count|request_latencies|container\/instance_count|container\/memory\/utilizations)|monitoring\.googleapis\.com\/uptime_check\/check_passed)$/;
      const filters =
        JSON.stringify([want.policies, want.dashboard, want.slos]).match(
          /metric\.type=\\"[^\\]+\\"/g,
        ) ?? [];
      for (const f of filters) {
        const type = f.slice('metric.type=\\"'.length, -2);
        expect(own.has(type) || builtIn.test(type), type).toBe(true);
      }
      for (const burn of JSON.stringify(want.policies).match(/select_slo_burn_rate\(\\"[^\\]+/g) ??
        []) {
        expect([sloName(s, 'availability'), sloName(s, 'latency')]).toContain(burn.split('\\"')[1]);
      }
    }
  });

  it('stay within what Cloud Monitoring accepts: whole minutes, windows of at most 25 hours', () => {
    for (const env of Object.values(SETTINGS)) {
      const s = loadOpsSettings({ ...env, ALERT_MAPPING_SUCCESS_HOURS: '25' });
      for (const p of wantedOps(s).policies) {
        for (const c of p.conditions as { conditionThreshold: Record<string, unknown> }[]) {
          const t = c.conditionThreshold;
          const duration = Number.parseInt(String(t.duration), 10);
          expect(duration % 60, p.displayName).toBe(0);
          for (const a of (t.aggregations ?? []) as { alignmentPeriod: string }[]) {
            const period = Number.parseInt(a.alignmentPeriod, 10);
            expect(period % 60).toBe(0);
            expect(period + duration, p.displayName).toBeLessThanOrEqual(25 * 3600);
          }
        }
      }
      for (const m of wantedOps(s).metrics) expect(m.name).toMatch(/^[A-Za-z0-9_.-]{1,100}$/);
    }
  });

  it('put the thresholds of the settings into the alerts', () => {
    const s = loadOpsSettings({
      ...BASE,
      ALERT_5XX_RATIO: '0.02',
      ALERT_LATENCY_P99_MS: '750',
      ALERT_REFRESH_FAILURES: '4',
      ALERT_MAPPING_BUDGET_RATIO: '0.8',
      ALERT_JOB_FAILED_ATTEMPTS: '3',
    });
    const want = wantedOps(s);
    const threshold = (key: string) =>
      (
        (want.policies.find((p) => p.userLabels.resource === key)?.conditions ?? []) as {
          conditionThreshold: { thresholdValue: number };
        }[]
      )[0]?.conditionThreshold.thresholdValue;
    expect(threshold('error-ratio')).toBe(0.02);
    expect(threshold('latency-p99')).toBe(750);
    expect(threshold('scheduler-failed-attempts')).toBe(2);
    const filter = (key: string) => want.metrics.find((m) => m.name.endsWith(key))?.filter;
    expect(filter('refresh-failures')).toContain('jsonPayload.failures>=4');
    expect(filter('mapping-near-budget')).toContain(
      `jsonPayload.summary.memoryBytes>=${Math.floor(513820024 * 0.8)}`,
    );
  });

  it('each alert has a runbook entry in the README, under "When an alert fires"', () => {
    const readme = readFileSync(`${ROOT}README.md`, 'utf8');
    const at = readme.indexOf('### When an alert fires');
    expect(at).toBeGreaterThan(0);
    const runbook = readme.slice(at);
    for (const title of Object.values(ALERTS)) expect(runbook).toContain(`#### ${title}\n`);
  });
});

describe('the monitoring settings', () => {
  it.each([
    ['ALERT_5XX_RATIO', '5'],
    ['ALERT_MAPPING_SUCCESS_HOURS', '26'],
    ['SLO_AVAILABILITY', '1'],
    ['UPTIME_PERIOD_MINS', '2'],
    ['ALERT_LATENCY_P99_MS', 'fast'],
  ])('refuse %s=%s, naming it', (name, value) => {
    expect(() => loadOpsSettings({ ...BASE, [name]: value })).toThrow(name);
  });

  it("read the profile function's staleness and back-off with its own defaults", () => {
    const s = loadOpsSettings(BASE);
    const profile = loadProfileConfig({});
    expect(s.MAX_STALENESS_SECS).toBe(profile.MAX_STALENESS_SECS);
    expect(s.REFRESH_RETRY_MAX_SECS).toBe(profile.REFRESH_RETRY_MAX_SECS);
  });
});

/** The types and fields of `fixture` that `installed` lacks or holds with another kind. */
function missingFrom(fixture: MessageSchemas, installed: MessageSchemas): string[] {
  const missing: string[] = [];
  for (const [name, type] of Object.entries(fixture.types)) {
    const now = installed.types[name];
    if (!now) {
      missing.push(name);
      continue;
    }
    for (const [field, spec] of Object.entries(type.fields)) {
      const other = now.fields[field];
      if (!other || other.kind !== spec.kind) missing.push(`${name}.${field}`);
      else if (spec.kind === 'enum' && other.kind === 'enum') {
        for (const v of spec.values)
          if (!other.values.includes(v)) missing.push(`${name}.${field}=${v}`);
      }
    }
  }
  return missing;
}
