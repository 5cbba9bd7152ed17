import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALERTS } from '../../shared/ops/alert-policies.js';
import { OPS_THRESHOLDS } from '../../shared/ops/ops-settings.js';
import { messageProblems, monitoringProtos, protoSchemas } from '../helpers/message-schema.js';
import {
  argv,
  DEMO_SETTINGS,
  gcloudShapes,
  having,
  planned,
  ROOT,
  realGcloud,
  type Sandbox,
  sandbox,
  unparsedByGcloud,
} from '../helpers/stub-cli/deploy-sandbox.js';

// deploy.sh's monitoring against the recording stubs, whose model of Cloud Monitoring and Logging
// remembers what a run made (test/helpers/stub-cli/stub-monitoring.mjs): first deploy, re-runs,
// changed settings, teardown, verify, refusals; every gcloud line parsed by the real gcloud.
const SETTINGS = {
  ...DEMO_SETTINGS,
  AEROSPIKE_HOSTS: '10.0.0.5:3000',
  MONITORING: 'on',
  ALERT_EMAIL: 'ops@example.com',
};
const TOKEN = 'ya29.stub-access-token';
const V3 = 'google.monitoring.v3';

/** What the model holds of `kind` (metrics, policies, dashboards, channels, services, slos, uptime). */
function held(box: Sandbox, kind: string): Record<string, unknown>[] {
  const dir = join(box.state, 'monitoring', kind);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

const changes = (commands: string[]) =>
  commands.filter(
    (c) =>
      /^gcloud (alpha |beta )?(monitoring|logging metrics) /.test(c) &&
      !/ (list|describe) /.test(c),
  );
const restWrites = (commands: string[]) =>
  commands.filter((c) => c.startsWith('curl ') && !c.includes('--request GET'));
const summary = (stdout: string) =>
  /# monitoring: (\d+) created, (\d+) updated, (\d+) deleted, (\d+) unchanged/
    .exec(stdout)
    ?.slice(1)
    .map(Number);

const deployed = sandbox(SETTINGS).then((box) => ({ box, first: box.run(), second: box.run() }));

describe('deploy.sh monitoring on a new project', () => {
  it('creates the email channel, the metrics, the SLOs, the uptime check, the alerts and the dashboard', async () => {
    const { box, first } = await deployed;
    expect(summary(first.stdout)).toEqual([27, 0, 0, 0]);
    const [channel] = held(box, 'channels');
    expect(channel).toMatchObject({
      type: 'email',
      labels: { email_address: 'ops@example.com' },
      userLabels: { 'managed-by': 'deploy-sh', deployment: 'profile-api' },
    });
    expect(held(box, 'metrics')).toHaveLength(8);
    expect(held(box, 'services').map((s) => s.name)).toEqual([
      'projects/123456789012/services/profile-api',
    ]);
    expect(
      held(box, 'slos')
        .map((s) => String(s.name).split('/').pop())
        .sort(),
    ).toEqual(['availability', 'latency']);
    const policies = held(box, 'policies');
    expect(policies.map((p) => p.displayName).sort()).toEqual(
      Object.entries(ALERTS)
        .filter(([key]) => !['sync-job-success', 'sync-lag', 'sync-failed-shards'].includes(key))
        .map(([, title]) => `profile-api: ${title}`)
        .sort(),
    );
    // Every alert goes to the channel just made.
    for (const p of policies) expect(p.notificationChannels).toEqual([channel?.name]);
    expect(held(box, 'dashboards').map((d) => d.displayName)).toEqual([
      'profile-api: Profile API (deploy.sh)',
    ]);
    const [uptime] = held(box, 'uptime');
    expect(uptime).toMatchObject({
      monitoredResource: {
        type: 'uptime_url',
        labels: { host: 'profile-api-abc123-ew.a.run.app' },
      },
      httpCheck: { path: '/health', serviceAgentAuthentication: { type: 'OIDC_TOKEN' } },
    });
  });

  it("lets Cloud Monitoring's service agent call the private function for the uptime check", async () => {
    const { first } = await deployed;
    expect(
      having(
        first.commands,
        'gcloud functions add-invoker-policy-binding profile-api ',
        '--member=serviceAccount:service-123456789012@gcp-sa-monitoring-notification.iam.gserviceaccount.com',
      ),
    ).toHaveLength(1);
  });

  it('sends definitions that are valid Cloud Monitoring messages, with the real channel and host', async () => {
    const { box } = await deployed;
    const schemas = protoSchemas(
      monitoringProtos(),
      `${V3}.AlertPolicy`,
      `${V3}.Service`,
      `${V3}.ServiceLevelObjective`,
      `${V3}.UptimeCheckConfig`,
    );
    const dir = join(box.work, 'ops/wanted');
    const type = (file: string) =>
      file.startsWith('policy-')
        ? 'AlertPolicy'
        : file.startsWith('slo-')
          ? 'ServiceLevelObjective'
          : file.startsWith('uptime-')
            ? 'UptimeCheckConfig'
            : file.startsWith('service-')
              ? 'Service'
              : undefined;
    let checked = 0;
    for (const file of readdirSync(dir)) {
      const t = type(file);
      if (!t) continue;
      const body = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      expect(messageProblems(schemas, `${V3}.${t}`, body), file).toEqual([]);
      checked++;
    }
    expect(checked).toBe(18);
  });

  it('keeps the access token out of every printed line and command line', async () => {
    const { first } = await deployed;
    const writes = restWrites(first.commands);
    expect(writes.length).toBe(4);
    for (const line of [...first.commands, first.stdout, first.stderr])
      expect(line).not.toContain(TOKEN);
    // The token reaches curl on stdin (the stub fails the call without it).
    for (const w of writes) expect(argv(w)).toContain('--config');
  });

  it('creates nothing twice and changes nothing on a re-run', async () => {
    const { box, second } = await deployed;
    expect(changes(second.commands)).toEqual([]);
    expect(restWrites(second.commands)).toEqual([]);
    expect(summary(second.stdout)).toEqual([0, 0, 0, 27]);
    expect(held(box, 'channels')).toHaveLength(1);
    expect(held(box, 'policies')).toHaveLength(14);
  });
});

describe('deploy.sh monitoring when settings change', () => {
  it('updates only the alert a threshold belongs to, in place', async () => {
    const box = await sandbox(SETTINGS);
    box.run();
    const before = held(box, 'policies').find((p) => String(p.displayName).endsWith('p99 latency'));
    const again = box.run([], { ALERT_LATENCY_P99_MS: '800' });
    expect(changes(again.commands).map((c) => argv(c).slice(0, 7).join(' '))).toEqual([
      `gcloud alpha monitoring policies update ${before?.name} --policy-from-file=${box.work}/ops/wanted/policy-latency-p99.json`,
    ]);
    const after = held(box, 'policies').find((p) => p.name === before?.name);
    expect(JSON.stringify(after)).toContain('"thresholdValue":800');
    expect(held(box, 'policies')).toHaveLength(14);
  });

  it('swaps the mapping alerts for the sync ones when MAPPING_STORE becomes bigtable', async () => {
    const box = await sandbox(SETTINGS);
    box.run();
    const moved = box.run([], { MAPPING_STORE: 'bigtable' });
    const deleted = having(moved.commands, ' delete ');
    expect(deleted.filter((c) => c.includes('monitoring policies'))).toHaveLength(2);
    expect(having(deleted, 'logging metrics delete profile-api-mapping-near-budget')).toHaveLength(
      1,
    );
    const titles = held(box, 'policies').map((p) => p.displayName);
    expect(titles).toContain('profile-api: No successful sync run');
    expect(titles).toContain('profile-api: Bigtable sync behind');
    expect(titles).not.toContain('profile-api: No successful mapping run');
    expect(held(box, 'metrics').map((m) => m.name)).toContain('profile-api-sync-lag');
  });

  it('says alerts are off, and how to turn them on, without a channel; the rest is made all the same', async () => {
    const box = await sandbox({ ...SETTINGS, ALERT_EMAIL: '' });
    const run = box.run();
    expect(run.stderr).toContain('alerts are off: no notification channel. Set ALERT_EMAIL=');
    expect(run.stderr).toContain('ALERT_CHANNELS=projects/PROJECT/notificationChannels/ID');
    expect(held(box, 'policies')).toEqual([]);
    expect(held(box, 'channels')).toEqual([]);
    expect(held(box, 'dashboards')).toHaveLength(1);
    expect(held(box, 'slos')).toHaveLength(2);
    // Given a channel later, the alerts come, to it.
    box.run([], { ALERT_CHANNELS: '987654321' });
    const policies = held(box, 'policies');
    expect(policies).toHaveLength(14);
    for (const p of policies) {
      expect(p.notificationChannels).toEqual(['projects/demo-proj/notificationChannels/987654321']);
    }
  });

  it('checks /health per region through the load balancer, with a key it never prints', async () => {
    const key = 'stub-secret-value-0123456789';
    const box = await sandbox({
      ...SETTINGS,
      EDGE: 'lb',
      DOMAIN: 'api.example.com',
      REGIONS: 'europe-west1,us-central1',
      AEROSPIKE_HOSTS_US_CENTRAL1: '10.1.0.5:3000',
      API_KEYS_SECRET: 'profile-api-keys',
      UPTIME_API_KEY_SECRET: 'uptime-key',
    });
    const run = box.run();
    const checks = held(box, 'uptime');
    expect(
      checks.map((c) => [
        (c.monitoredResource as { labels: { host: string } }).labels.host,
        (c.httpCheck as { headers: Record<string, string> }).headers['x-profile-api-region'],
        (c.httpCheck as { maskHeaders: boolean }).maskHeaders,
      ]),
    ).toEqual([
      ['api.example.com', 'europe-west1', true],
      ['api.example.com', 'us-central1', true],
    ]);
    expect(JSON.stringify(checks)).toContain(key);
    for (const line of [...run.commands, run.stdout, run.stderr]) expect(line).not.toContain(key);
    // No OIDC grant: the load balancer is the way in.
    expect(having(run.commands, 'gcp-sa-monitoring-notification')).toEqual([]);
    const without = await sandbox({
      ...SETTINGS,
      EDGE: 'lb',
      DOMAIN: 'api.example.com',
      API_KEYS_SECRET: 'profile-api-keys',
    });
    const skipped = without.run();
    expect(skipped.stderr).toContain(
      'no uptime check: the profile function requires an API key: set UPTIME_API_KEY_SECRET',
    );
    expect(held(without, 'uptime')).toEqual([]);
  });
});

describe('deploy.sh verify and teardown of the monitoring', () => {
  it('verify reports what exists and what is missing, and changes nothing', async () => {
    const box = await sandbox(SETTINGS);
    box.run();
    const complete = box.run(['verify'], {
      BIGQUERY_EMULATOR_HOST: '',
      GOOGLE_OAUTH_ACCESS_TOKEN: 'x',
      DEPLOY_DIST_DIR: await fakeDistDir(),
    });
    expect(complete.stdout).toContain('# present: alert "Profile 5xx ratio"');
    expect(complete.stdout).toContain('Verified: the monitoring is complete');
    const [policy] = held(box, 'policies').filter((p) =>
      String(p.displayName).endsWith('Job refused'),
    );
    rmSync(join(box.state, 'monitoring/policies', `${String(policy?.name).split('/').pop()}.json`));
    const gap = box.run(['verify'], {
      BIGQUERY_EMULATOR_HOST: '',
      GOOGLE_OAUTH_ACCESS_TOKEN: 'x',
      DEPLOY_DIST_DIR: await fakeDistDir(),
    });
    expect(gap.stdout).toContain('# missing: alert "Job refused"');
    expect(gap.stdout).toContain(
      'Monitoring: some of it is missing or differs (above); deploy again',
    );
    expect(changes(gap.commands)).toEqual([]);
    expect(restWrites(gap.commands)).toEqual([]);
  });

  it('teardown removes all of it, alerts first and its own channel last, and leaves yours', async () => {
    const box = await sandbox({ ...SETTINGS, ALERT_CHANNELS: '987654321' });
    box.run();
    const down = box.run(['teardown']);
    const order = changes(down.commands)
      .concat(restWrites(down.commands))
      .map((c) => down.commands.indexOf(c))
      .sort((a, b) => a - b)
      .map((i) => down.commands[i] ?? '');
    const kinds = order.map((c) =>
      c.includes('policies delete')
        ? 'policy'
        : c.includes('metrics delete')
          ? 'metric'
          : c.includes('channels delete')
            ? 'channel'
            : c.includes('serviceLevelObjectives')
              ? 'slo'
              : c.includes('uptimeCheckConfigs')
                ? 'uptime'
                : c.includes('dashboards delete')
                  ? 'dashboard'
                  : c.includes('/services/')
                    ? 'service'
                    : c,
    );
    expect(kinds.slice(0, 14)).toEqual(Array(14).fill('policy'));
    expect(kinds.lastIndexOf('slo')).toBeLessThan(kinds.indexOf('service'));
    expect(kinds.at(-1)).toBe('channel');
    for (const kind of [
      'metrics',
      'policies',
      'dashboards',
      'channels',
      'services',
      'slos',
      'uptime',
    ]) {
      expect(held(box, kind), kind).toEqual([]);
    }
    expect(having(down.commands, 'channels delete', '987654321')).toEqual([]);
    // Before the functions go: nothing pages while they do.
    const firstFunctionDelete = down.commands.findIndex((c) =>
      c.startsWith('gcloud functions delete'),
    );
    expect(down.commands.indexOf(order.at(-1) ?? '')).toBeLessThan(firstFunctionDelete);
  });

  it('leaves Cloud Monitoring alone with MONITORING=off, in every command', async () => {
    const box = await sandbox(SETTINGS);
    box.run();
    for (const args of [[], ['teardown']]) {
      const run = box.run(args, { MONITORING: 'off' });
      expect(run.commands.filter((c) => /monitoring|logging metrics|^curl /.test(c))).toEqual([]);
    }
  });
});

describe('deploy.sh monitoring refusals and dry runs', () => {
  it.each([
    [{ MONITORING: 'maybe' }, 'MONITORING must be on or off'],
    [
      { ALERT_EMAIL: 'ops at example.com' },
      "ALERT_EMAIL: 'ops at example.com' is not an email address",
    ],
    [{ ALERT_CHANNELS: 'slack' }, "ALERT_CHANNELS: 'slack' is not a notification channel"],
    [{ ALERT_5XX_RATIO: '5' }, 'ALERT_5XX_RATIO'],
    [{ ALERT_MAPPING_SUCCESS_HOURS: '30' }, 'ALERT_MAPPING_SUCCESS_HOURS'],
    [{ SLO_AVAILABILITY: '99.9' }, 'SLO_AVAILABILITY'],
  ])('refuses %j before touching anything', async (env, message) => {
    const box = await sandbox(SETTINGS);
    const result = box.attempt([], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
    expect(result.commands).toEqual([]);
  });

  it('prints the plan with DRY_RUN=1 and reads no token', async () => {
    const box = await sandbox(SETTINGS);
    const { commands, stdout } = box.run([], { DRY_RUN: '1' });
    expect(commands).toEqual([]);
    const lines = planned(stdout);
    expect(having(lines, 'gcloud alpha monitoring policies create')).toHaveLength(14);
    expect(having(lines, 'gcloud logging metrics create')).toHaveLength(8);
    expect(having(lines, 'curl ', '--request POST')).toHaveLength(4);
    expect(stdout).not.toContain('print-access-token  #');
  });

  it('documents every monitoring setting in --help and in the README', async () => {
    const box = await sandbox(SETTINGS);
    const help = box.run(['--help']).stdout;
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const name of [
      ...OPS_THRESHOLDS,
      'UPTIME_PERIOD_MINS',
      'UPTIME_API_KEY_SECRET',
      'MONITORING',
      'ALERT_EMAIL',
      'ALERT_CHANNELS',
    ]) {
      expect(help, name).toContain(name);
      expect(readme, name).toContain(`\`${name}\``);
    }
  });
});

describe('the monitoring gcloud command lines', () => {
  it('all parse with the real gcloud (no credentials: "no active account" means the flags parsed)', async (ctx) => {
    const real = realGcloud();
    if (!real) ctx.skip('gcloud is not installed on this machine: parse check skipped');
    const box = await sandbox(SETTINGS);
    const first = box.run();
    const changed = box.run([], { ALERT_LATENCY_P99_MS: '800', MAPPING_STORE: 'bigtable' });
    const down = box.run(['teardown']);
    const all = [...first.commands, ...changed.commands, ...down.commands].filter((c) =>
      /monitoring|logging metrics|gcp-sa-monitoring|print-access-token/.test(c),
    );
    // Look-ups are left out of the shapes; these are new, so they are checked too.
    const lines = [
      ...gcloudShapes(all, (l) => l.replace(/\/\d+(?= )/g, '/N')),
      ...new Set(all.filter((c) => / list /.test(c))),
    ];
    for (const expected of [
      'gcloud alpha monitoring policies create --policy-from-file=',
      'gcloud alpha monitoring policies update ',
      'gcloud alpha monitoring policies delete ',
      'gcloud logging metrics create ',
      'gcloud logging metrics update ',
      'gcloud logging metrics delete ',
      'gcloud monitoring dashboards create ',
      'gcloud monitoring dashboards delete ',
      'gcloud beta monitoring channels create ',
      'gcloud beta monitoring channels delete ',
      'gcloud beta monitoring channels list ',
      'gcloud auth print-access-token',
    ]) {
      expect(having(lines, expected).length, expected).toBeGreaterThan(0);
    }
    expect(await unparsedByGcloud(lines, real?.path ?? '')).toEqual([]);
  }, 180_000);
});

/** A stand-in for the compiled mapping dry run, so that verify runs without a build. */
async function fakeDistDir(): Promise<string> {
  const { fakeDist } = await import('../helpers/stub-cli/deploy-sandbox.js');
  return (await fakeDist()).dir;
}
