import { type AlertKey, alertPolicies } from './alert-policies.js';
import { dashboard, dashboardName } from './dashboard.js';
import { LOG_METRIC_KEYS, logMetricName, logMetrics } from './log-metrics.js';
import type { OpsSettings } from './ops-settings.js';
import {
  monitoringService,
  type SloId,
  serviceId,
  serviceLevelObjectives,
  uptimeChecks,
} from './service-levels.js';

type Json = Record<string, unknown>;

/** What Cloud Monitoring and Logging hold now (deploy.sh lists them; empty when nothing). */
export interface ExistingOps {
  readonly metrics: readonly Json[];
  readonly policies: readonly Json[];
  readonly dashboards: readonly Json[];
  readonly uptimeChecks: readonly Json[];
  readonly service: Json | undefined;
  readonly slos: readonly Json[];
  readonly channels: readonly Json[];
}

export type OpsKind = 'metric' | 'service' | 'slo' | 'uptime' | 'policy' | 'dashboard' | 'channel';
export type OpsOp = 'create' | 'update' | 'delete' | 'keep';

/** One step: `body` is what to send (create, update), `target` the existing resource's name or id. */
export interface OpsAction {
  readonly kind: OpsKind;
  readonly op: OpsOp;
  /** Our key for it: the metric or SLO id, the alert key, the uptime check's label. */
  readonly id: string;
  readonly target?: string;
  readonly body?: Json;
  /** For REST updates: the fields sent (updateMask). */
  readonly mask?: string;
}

/** The definitions for `s`, by kind and key. */
export function wantedOps(s: OpsSettings) {
  return {
    metrics: logMetrics(s),
    service: monitoringService(s),
    slos: serviceLevelObjectives(s),
    uptimeChecks: uptimeChecks(s),
    policies: alertPolicies(s),
    dashboard: dashboard(s),
  };
}

const labelsOf = (r: Json) => (r.userLabels ?? {}) as Record<string, string>;

/** Whether `r` carries this deployment's labels (see ownLabels). */
function ours(s: OpsSettings, r: Json): boolean {
  const l = labelsOf(r);
  return l['managed-by'] === 'deploy-sh' && l.deployment === s.NAME_PREFIX;
}

const ZERO = new Set<unknown>([0, false, '', '0s', 'STRING']);

/**
 * Whether `existing` already says everything `wanted` says. Only the fields we send are compared:
 * the server adds its own (names, records, etags), and leaves out default values (proto3 JSON), so
 * a missing field matches a zero one. 64-bit integers come back as strings.
 */
export function sameAs(wanted: unknown, existing: unknown): boolean {
  if (existing === undefined) return ZERO.has(wanted) || isEmpty(wanted);
  if (Array.isArray(wanted)) {
    return (
      Array.isArray(existing) &&
      existing.length === wanted.length &&
      wanted.every((w, i) => sameAs(w, existing[i]))
    );
  }
  if (wanted !== null && typeof wanted === 'object') {
    if (existing === null || typeof existing !== 'object') return false;
    return Object.entries(wanted).every(([k, w]) => sameAs(w, (existing as Json)[k]));
  }
  if (typeof wanted === 'number' && typeof existing === 'string')
    return String(wanted) === existing;
  return wanted === existing;
}

function isEmpty(v: unknown): boolean {
  if (Array.isArray(v)) return v.length === 0;
  return v !== null && typeof v === 'object' && Object.keys(v).length === 0;
}

/** An uptime check's headers come back masked: compare their names only. */
function uptimeSame(wanted: Json, existing: Json): boolean {
  const w = wanted.httpCheck as Json;
  const e = (existing.httpCheck ?? {}) as Json;
  if (!w.maskHeaders || !e.headers) return sameAs(wanted, existing);
  const { headers, ...rest } = w;
  return (
    sameAs({ ...wanted, httpCheck: rest }, existing) &&
    Object.keys(headers as Json)
      .sort()
      .join() ===
      Object.keys(e.headers as Json)
        .sort()
        .join()
  );
}

/**
 * What to do to make Cloud Monitoring hold exactly this deployment's definitions: create what is
 * missing, update what differs, keep the rest, delete what is ours but no longer wanted (another
 * MAPPING_STORE's alerts, an uptime check of a region gone). `wanted` undefined: delete all of ours
 * (teardown). Ordered so that nothing refers to what does not exist yet or any more.
 */
export function planOps(s: OpsSettings, existing: ExistingOps, teardown = false): OpsAction[] {
  const want = teardown ? undefined : wantedOps(s);
  const actions: OpsAction[] = [];
  const late: OpsAction[] = [];

  // Log-based metrics: ours by name.
  const metricNames = new Set(LOG_METRIC_KEYS.map((k) => logMetricName(s, k)));
  const metricsNow = new Map(existing.metrics.map((m) => [String(m.name), m]));
  for (const m of want?.metrics ?? []) {
    const now = metricsNow.get(m.name);
    const op = !now ? 'create' : sameAs(m, now) ? 'keep' : 'update';
    actions.push({ kind: 'metric', op, id: m.name, body: m as unknown as Json });
  }
  for (const name of metricsNow.keys()) {
    if (metricNames.has(name) && !want?.metrics.some((m) => m.name === name)) {
      late.push({ kind: 'metric', op: 'delete', id: name, target: name });
    }
  }

  // The service and its SLOs: ours by id.
  const sloNow = new Map(existing.slos.map((o) => [String(o.name).split('/').pop(), o]));
  if (want) {
    const service = existing.service;
    actions.push({
      kind: 'service',
      op: !service ? 'create' : sameAs(want.service, service) ? 'keep' : 'update',
      id: serviceId(s),
      body: want.service,
      mask: 'displayName,userLabels',
    });
    for (const [id, slo] of Object.entries(want.slos) as [SloId, Json][]) {
      const now = service ? sloNow.get(id) : undefined;
      actions.push({
        kind: 'slo',
        op: !now ? 'create' : sameAs(slo, now) ? 'keep' : 'update',
        id,
        body: slo,
        mask: 'displayName,goal,rollingPeriod,serviceLevelIndicator,userLabels',
      });
    }
  }

  // Uptime checks: ours by label. The API updates only some fields (display name, the HTTP
  // check, the timeout): a check whose host, period or labels changed is made anew.
  const uptimeNow = existing.uptimeChecks.filter((u) => ours(s, u));
  const keyOf = (r: Json) => labelsOf(r).resource ?? '';
  for (const u of want?.uptimeChecks ?? []) {
    const now = uptimeNow.find((e) => keyOf(e) === keyOf(u));
    const updatable =
      now !== undefined &&
      (['monitoredResource', 'period', 'userLabels'] as const).every((f) => sameAs(u[f], now[f]));
    if (now && !updatable) {
      late.push({ kind: 'uptime', op: 'delete', id: keyOf(u), target: String(now.name) });
    }
    actions.push({
      kind: 'uptime',
      op: !now || !updatable ? 'create' : uptimeSame(u, now) ? 'keep' : 'update',
      id: keyOf(u),
      ...(now && updatable ? { target: String(now.name) } : {}),
      body: u,
      mask: 'displayName,httpCheck,timeout',
    });
  }
  for (const now of uptimeNow) {
    if (!want?.uptimeChecks.some((u) => keyOf(u) === keyOf(now))) {
      late.push({ kind: 'uptime', op: 'delete', id: keyOf(now), target: String(now.name) });
    }
  }

  // Alerting policies: ours by label. Policies go before the channels and metrics they name.
  const policiesNow = existing.policies.filter((p) => ours(s, p));
  for (const p of want?.policies ?? []) {
    const key = labelsOf(p).resource as AlertKey;
    const now = policiesNow.find((e) => labelsOf(e).resource === key);
    actions.push({
      kind: 'policy',
      op: !now ? 'create' : sameAs(p, now) ? 'keep' : 'update',
      id: key,
      ...(now ? { target: String(now.name) } : {}),
      body: now ? { ...p, name: now.name } : p,
    });
  }
  const stalePolicies: OpsAction[] = [];
  for (const now of policiesNow) {
    const key = labelsOf(now).resource ?? '';
    if (!want?.policies.some((p) => labelsOf(p).resource === key)) {
      stalePolicies.push({ kind: 'policy', op: 'delete', id: key, target: String(now.name) });
    }
  }

  // The dashboard: ours by display name; an update carries the etag it replaces.
  const board = existing.dashboards.find((d) => d.displayName === dashboardName(s));
  if (want) {
    actions.push({
      kind: 'dashboard',
      op: !board ? 'create' : sameAs(want.dashboard, board) ? 'keep' : 'update',
      id: 'dashboard',
      ...(board ? { target: String(board.name) } : {}),
      body: board ? { ...want.dashboard, name: board.name, etag: board.etag } : want.dashboard,
    });
  } else if (board) {
    late.push({ kind: 'dashboard', op: 'delete', id: 'dashboard', target: String(board.name) });
  }

  // Teardown: the SLOs before their service, the channels deploy.sh created last.
  if (!want) {
    for (const [id, o] of sloNow) {
      late.push({ kind: 'slo', op: 'delete', id: String(id), target: String(o.name) });
    }
    if (existing.service) {
      late.push({
        kind: 'service',
        op: 'delete',
        id: serviceId(s),
        target: String(existing.service.name),
      });
    }
    for (const c of existing.channels.filter((c) => ours(s, c))) {
      late.push({
        kind: 'channel',
        op: 'delete',
        id: String(c.name).split('/').pop() ?? '',
        target: String(c.name),
      });
    }
  }
  return [...stalePolicies, ...actions, ...late];
}
