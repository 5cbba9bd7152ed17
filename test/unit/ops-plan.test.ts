import { describe, expect, it } from 'vitest';
import {
  type ExistingOps,
  type OpsAction,
  planOps,
  sameAs,
  wantedOps,
} from '../../shared/ops/ops-plan.js';
import { loadOpsSettings, type OpsSettings } from '../../shared/ops/ops-settings.js';

// What deploy.sh does to Cloud Monitoring on a re-run: nothing twice, only what changed.
const BASE = {
  PROJECT_ID: 'demo-proj',
  NAME_PREFIX: 'profile-api',
  PROFILE_REGIONS: 'europe-west1',
  UPTIME_HOST: 'profile-api-abc123-ew.a.run.app',
  MAPPING_MAX_BYTES: '513820024',
  ALERT_CHANNEL_NAMES: 'projects/demo-proj/notificationChannels/123',
};
const NOTHING: ExistingOps = {
  metrics: [],
  policies: [],
  dashboards: [],
  uptimeChecks: [],
  service: undefined,
  slos: [],
  channels: [],
};

type Json = Record<string, unknown>;

/**
 * What the APIs answer for what was sent: their own fields added, zero values left out (proto3
 * JSON), 64-bit integers as strings, masked headers.
 */
function echo(value: unknown, extra: Json = {}): Json {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v !== null && typeof v === 'object') {
      const out: Json = {};
      for (const [k, x] of Object.entries(v)) {
        if (x === 0 || x === '0s' || x === 'STRING' || x === false) continue;
        out[k] = k === 'numFiniteBuckets' ? String(x) : k === 'x-api-key' ? '******' : strip(x);
      }
      return out;
    }
    return v;
  };
  return { ...(strip(value) as Json), ...extra };
}

/** Everything `s` wants, as Cloud Monitoring and Logging would list it after a deploy. */
function deployed(s: OpsSettings): ExistingOps {
  const want = wantedOps(s);
  return {
    metrics: want.metrics.map((m) =>
      echo(m, {
        createTime: '2026-12-07T09:00:00Z',
        metricDescriptor: echo({
          ...m.metricDescriptor,
          type: `logging.googleapis.com/user/${m.name}`,
        }),
      }),
    ),
    policies: want.policies.map((p, i) =>
      echo(p, {
        name: `projects/demo-proj/alertPolicies/${i}`,
        creationRecord: { mutateTime: 'x' },
      }),
    ),
    dashboards: [echo(want.dashboard, { name: 'projects/1/dashboards/abc', etag: 'e1' })],
    uptimeChecks: want.uptimeChecks.map((u, i) =>
      echo(u, {
        name: `projects/demo-proj/uptimeCheckConfigs/u${i}`,
        checkerType: 'STATIC_IP_CHECKERS',
      }),
    ),
    service: echo(want.service, { name: 'projects/123/services/profile-api' }),
    slos: Object.entries(want.slos).map(([id, o]) =>
      echo(o, { name: `projects/123/services/profile-api/serviceLevelObjectives/${id}` }),
    ),
    channels: [],
  };
}

const ops = (actions: OpsAction[], op: string) =>
  actions.filter((a) => a.op === op).map((a) => `${a.kind} ${a.id}`);

describe('the monitoring plan', () => {
  it('creates everything on a first deploy, metrics before the alerts that count them', () => {
    const actions = planOps(loadOpsSettings(BASE), NOTHING);
    expect(actions.every((a) => a.op === 'create')).toBe(true);
    const kinds = actions.map((a) => a.kind);
    expect(kinds.lastIndexOf('metric')).toBeLessThan(kinds.indexOf('policy'));
    expect(kinds.lastIndexOf('slo')).toBeLessThan(kinds.indexOf('policy'));
    expect(kinds.at(-1)).toBe('dashboard');
  });

  it('changes nothing when everything is there as the APIs answer it', () => {
    const s = loadOpsSettings(BASE);
    expect(planOps(s, deployed(s)).filter((a) => a.op !== 'keep')).toEqual([]);
  });

  it('updates only what a changed setting touches', () => {
    const before = loadOpsSettings(BASE);
    const after = loadOpsSettings({
      ...BASE,
      ALERT_LATENCY_P99_MS: '800',
      ALERT_REFRESH_FAILURES: '5',
    });
    const actions = planOps(after, deployed(before));
    expect(ops(actions, 'update')).toEqual([
      'metric profile-api-refresh-failures',
      'policy latency-p99',
      'policy refresh-failing',
    ]);
    expect(ops(actions, 'create')).toEqual([]);
    // An update names what it replaces.
    expect(actions.find((a) => a.id === 'latency-p99')?.target).toBe(
      'projects/demo-proj/alertPolicies/1',
    );
  });

  it('replaces the alerts and metrics of the other mapping store when MAPPING_STORE changes', () => {
    const snapshot = loadOpsSettings(BASE);
    const bigtable = loadOpsSettings({ ...BASE, MAPPING_STORE: 'bigtable', MAPPING_MAX_BYTES: '' });
    const actions = planOps(bigtable, deployed(snapshot));
    expect(ops(actions, 'delete')).toEqual([
      'policy mapping-job-success',
      'policy mapping-near-budget',
      'metric profile-api-mapping-near-budget',
    ]);
    expect(ops(actions, 'create')).toEqual([
      'metric profile-api-sync-lag',
      'metric profile-api-sync-late',
      'metric profile-api-sync-failed-shards',
      'policy sync-job-success',
      'policy sync-lag',
      'policy sync-failed-shards',
    ]);
    // Deleted alerts go first: nothing refers to a metric once it is deleted.
    expect(actions[0]?.op).toBe('delete');
  });

  it('keeps an uptime check whose key is masked, and makes a new one when its host, period or key changes', () => {
    const keyed = { ...BASE, API_KEYS_ON: 'true', UPTIME_API_KEY: 'uptime-key-0123456789abcdef' };
    const s = loadOpsSettings(keyed);
    expect(
      planOps(s, deployed(s))
        .filter((a) => a.kind === 'uptime')
        .map((a) => a.op),
    ).toEqual(['keep']);
    for (const change of [
      { UPTIME_HOST: 'profile-api-new-ew.a.run.app' },
      { UPTIME_PERIOD_MINS: '1' },
    ]) {
      const moved = loadOpsSettings({ ...keyed, ...change });
      const uptime = planOps(moved, deployed(s)).filter((a) => a.kind === 'uptime');
      expect(uptime.map((a) => a.op).sort()).toEqual(['create', 'delete']);
    }
    // The API answers the key masked; a digest of it among the labels shows a new one.
    const rekeyed = loadOpsSettings({ ...keyed, UPTIME_API_KEY: 'another-key-0123456789abcdef' });
    const uptime = planOps(rekeyed, deployed(s)).filter((a) => a.kind === 'uptime');
    expect(uptime.map((a) => a.op).sort()).toEqual(['create', 'delete']);
    const labels = uptime.find((a) => a.op === 'create')?.body?.userLabels;
    expect(labels).toHaveProperty('key-sha256');
    expect(JSON.stringify(labels)).not.toContain('another-key');
  });

  it('tears down only what is ours: alerts first, the SLOs before their service, our channels last', () => {
    const s = loadOpsSettings(BASE);
    const now = deployed(s);
    const foreign = {
      name: 'projects/demo-proj/alertPolicies/99',
      displayName: 'someone else',
      userLabels: { team: 'x' },
    };
    const channels = [
      {
        name: 'projects/demo-proj/notificationChannels/1',
        displayName: 'ours',
        userLabels: { 'managed-by': 'deploy-sh', deployment: 'profile-api' },
      },
      {
        name: 'projects/demo-proj/notificationChannels/2',
        displayName: 'the pager',
        userLabels: {},
      },
    ];
    const actions = planOps(s, { ...now, policies: [...now.policies, foreign], channels }, true);
    expect(actions.every((a) => a.op === 'delete')).toBe(true);
    const targets = actions.map((a) => a.target);
    expect(targets).not.toContain(foreign.name);
    expect(targets).not.toContain('projects/demo-proj/notificationChannels/2');
    const kinds = actions.map((a) => a.kind);
    expect(kinds.lastIndexOf('policy')).toBeLessThan(kinds.indexOf('metric'));
    expect(kinds.lastIndexOf('slo')).toBeLessThan(kinds.indexOf('service'));
    expect(kinds.at(-1)).toBe('channel');
    expect(ops(actions, 'delete').filter((a) => a.startsWith('policy'))).toHaveLength(14);
  });
});

describe('sameAs', () => {
  it.each([
    [{ a: 1 }, { a: '1', b: 2 }, true],
    [{ a: 0 }, {}, true],
    [{ a: [1, 2] }, { a: [1] }, false],
    [{ a: { b: 'x' } }, { a: { b: 'y' } }, false],
    [{ a: 'x' }, {}, false],
  ])('%j within %j: %s', (wanted, existing, same) => {
    expect(sameAs(wanted, existing)).toBe(same);
  });
});
