import { type ChildProcess, spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoDataset, generateDemoDataset } from '../../shared/demo/demo-dataset.js';
import { type LogMetric, logMetrics } from '../../shared/ops/log-metrics.js';
import { loadOpsSettings } from '../../shared/ops/ops-settings.js';
import { BigtableEmulator } from '../emulators/bigtable-emulator.js';
import { bigtableEnv, createMappingTable } from '../helpers/bigtable-table.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { type LocalStack, startLocalStack } from '../helpers/local-stack.js';
import {
  cloudRunEntry,
  extract,
  matchesLogFilter,
  parseLogFilter,
} from '../helpers/logging-query.js';

// deploy.sh's log-based metrics against the lines the functions really write: each function runs
// in its own process (functions-framework, the production adapters, the test servers), its stdout
// is what Cloud Run would ship, turned into the LogEntry Cloud Logging stores (special fields
// lifted out, the rest in jsonPayload, the Cloud Run resource of its service). Each filter must
// select what the test caused, checked against the functions' own HTTP answers, and nothing else.
const ROOT = new URL('../..', import.meta.url).pathname;
const SHIFT_CLOCK = pathToFileURL(`${ROOT}test/helpers/shift-clock.mjs`).href;
const DAY_MS = 86_400_000;
const PROJECT = 'local-project';
const REGION = 'europe-west1';
const PREFIX = 'profile-api';

type Line = Record<string, unknown>;

/** A function in its own process, with the JSON lines it wrote. */
interface Running {
  readonly service: string;
  readonly url: string;
  readonly lines: Line[];
  stop(): Promise<void>;
}

const running: Running[] = [];

async function start(
  target: string,
  service: string,
  env: Record<string, string>,
  shiftMs = 0,
): Promise<Running> {
  const port = await freePort();
  const imports = ['--import=tsx', ...(shiftMs ? [`--import=${SHIFT_CLOCK}`] : [])];
  const child: ChildProcess = spawn(`${ROOT}node_modules/.bin/functions-framework`, [], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...env,
      NODE_OPTIONS: [process.env.NODE_OPTIONS, ...imports].filter(Boolean).join(' '),
      SHIFT_CLOCK_MS: String(shiftMs),
      FUNCTION_SOURCE: `${ROOT}functions/index.ts`,
      FUNCTION_TARGET: target,
      PORT: String(port),
    },
  });
  const lines: Line[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) {
      if (part.startsWith('{')) lines.push(JSON.parse(part) as Line);
    }
  });
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errors = (errors + chunk.toString()).slice(-4_000);
  });
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`${target} exited: ${errors}`);
    await fetch(`${url}/__ping`);
  }, 30_000);
  const proc: Running = {
    service,
    url,
    lines,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
  running.push(proc);
  return proc;
}

async function post(proc: Running, body: unknown = {}) {
  const res = await fetch(`${proc.url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Every line written so far, as Cloud Logging stores it, with where it came from. */
function entries(...procs: Running[]) {
  return procs.flatMap((p) =>
    p.lines.map((line, index) => ({
      proc: p,
      index,
      entry: cloudRunEntry(line, { project: PROJECT, service: p.service, region: REGION }),
    })),
  );
}

const selectedBy = (metric: LogMetric | undefined, all: ReturnType<typeof entries>) => {
  if (!metric) throw new Error('no such metric');
  return all.filter((e) => matchesLogFilter(metric.filter, e.entry));
};

let stack: LocalStack;
let data: DemoDataset;

beforeAll(async () => {
  stack = await startLocalStack();
  data = generateDemoDataset({
    seed: 11,
    persons: 200,
    segments: 40,
    orphanProfiles: 10,
    superNodeIds: 55,
  });
  await stack.seed(data);
}, 60_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await stack?.close();
});

describe('the filter evaluator', () => {
  it('reads the subset the metrics use and refuses the rest', () => {
    expect(parseLogFilter('jsonPayload."@type"="x" AND severity>=ERROR a.b=(1 OR "c")')).toEqual([
      { path: ['jsonPayload', '@type'], op: '=', values: ['x'] },
      { path: ['severity'], op: '>=', values: ['ERROR'] },
      { path: ['a', 'b'], op: '=', values: [1, 'c'] },
    ]);
    expect(() => parseLogFilter('a="x" OR b="y"')).toThrow('unsupported');
    expect(() => parseLogFilter('NOT a="x"')).toThrow('unsupported');
    expect(() => parseLogFilter('a:"x"')).toThrow('unsupported operator');
    expect(matchesLogFilter('severity>=WARNING', { severity: 'ERROR' })).toBe(true);
    expect(matchesLogFilter('severity>=WARNING', { severity: 'INFO' })).toBe(false);
    expect(matchesLogFilter('jsonPayload.n>=3', { jsonPayload: {} })).toBe(false);
  });
});

describe('the log-based metrics (snapshot mode)', () => {
  let profile: Running;
  let catalogJob: Running;
  let mappingJob: Running;
  let tightMappingJob: Running;
  const jobAnswers: { proc: Running; body: Record<string, unknown> }[] = [];
  const profileAnswers: { status: number; code?: string }[] = [];
  let beforeFault = 0;
  let afterFault = 0;

  beforeAll(async () => {
    // The catalog job runs three days in the past: its snapshot is stale once served.
    catalogJob = await start(
      'snapshotCatalog',
      `${PREFIX}-snapshot-catalog`,
      stack.env,
      -3 * DAY_MS,
    );
    mappingJob = await start('snapshotMapping', `${PREFIX}-snapshot-mapping`, stack.env);
    tightMappingJob = await start('snapshotMapping', `${PREFIX}-snapshot-mapping`, {
      ...stack.env,
      MAPPING_MAX_BYTES: '1000',
    });
    for (const [proc, body] of [
      [catalogJob, {}],
      [tightMappingJob, {}],
      [mappingJob, {}],
      [catalogJob, {}],
      [mappingJob, {}],
      [mappingJob, { dryRun: true }],
    ] as const) {
      const answer = await post(proc, body);
      expect(answer.status).toBe(200);
      jobAnswers.push({ proc, body: answer.body });
    }
    profile = await start('profile', PREFIX, {
      ...stack.env,
      NODE_ENV: 'production',
      IGNORED_ROUTES: '',
      REFRESH_INTERVAL_SECS: '1',
      REFRESH_RETRY_MAX_SECS: '1',
      AEROSPIKE_TOTAL_TIMEOUT_MS: '300',
      AEROSPIKE_SOCKET_TIMEOUT_MS: '150',
      AEROSPIKE_MAX_RETRIES: '0',
      REQUEST_BUDGET_MS: '400',
      SNAPSHOT_TIMEOUT_MS: '500',
    });
    const ask = async (path: string) => {
      const res = await fetch(`${profile.url}${path}`);
      const body = (await res.json()) as { error?: { code: string } };
      // Lookups only: /health answers its own 503 (no error code) until the instance is ready.
      if (path !== '/health') {
        profileAnswers.push({
          status: res.status,
          ...(body.error ? { code: body.error.code } : {}),
        });
      }
      return res.status;
    };
    await eventually(async () => expect(await ask('/health')).toBe(200), 30_000, 200);
    // Normal answers, and one a caller got wrong (logged, but no backend is down).
    for (let i = 0; i < 3; i++) expect(await ask(`/?id=${data.samples.linked}`)).toBe(200);
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await ask(`/?id=${data.samples.linked}`)).toBe(200);
    expect(await ask('/?id=')).toBe(400);
    // Aerospike stops answering: every lookup is a 503 store_unavailable.
    await stack.aerospike.setMode({ kind: 'silent' });
    for (let i = 0; i < 3; i++) expect(await ask(`/?id=${data.samples.linked}`)).toBe(503);
    await stack.aerospike.setMode({ kind: 'normal' });
    // GCS fails: every refresh check fails, the last good snapshots keep serving.
    await eventually(async () => expect(profile.lines.length).toBeGreaterThan(0));
    beforeFault = profile.lines.length;
    stack.gcs.inject({ status: 503 });
    await eventually(
      async () => {
        await ask(`/?id=${data.samples.linked}`);
        expect(profile.lines.filter((l) => Number(l.failures) >= 4).length).toBeGreaterThan(0);
      },
      30_000,
      300,
    );
    stack.gcs.clearFaults();
    afterFault = profile.lines.length;
  }, 120_000);

  const settings = () =>
    loadOpsSettings({
      PROJECT_ID: PROJECT,
      NAME_PREFIX: PREFIX,
      PROFILE_REGIONS: REGION,
      // The budget is the published mapping's own size: it is at the budget.
      MAPPING_MAX_BYTES: String(
        jobAnswers.find((a) => a.body.outcome === 'published' && a.proc === mappingJob)?.body
          .memoryBytes,
      ),
      ALERT_REFRESH_FAILURES: '3',
    });
  const metric = (key: string) => logMetrics(settings()).find((m) => m.name === `${PREFIX}-${key}`);
  const all = () => entries(profile, catalogJob, mappingJob, tightMappingJob);

  it('unavailable-answers: one per 503 answer, by its code; never a client error', () => {
    const selected = selectedBy(metric('unavailable-answers'), all());
    const unavailable = profileAnswers.filter((a) => a.status === 503);
    // Three while Aerospike was silent (a request just after may still find it reconnecting).
    expect(unavailable.length).toBeGreaterThanOrEqual(3);
    expect(selected.map((s) => extract('EXTRACT(jsonPayload.errorCode)', s.entry))).toEqual(
      unavailable.map((a) => a.code),
    );
    expect(selected.every((s) => (s.entry.httpRequest as { status: number }).status === 503)).toBe(
      true,
    );
  });

  it('job-runs: one per run summary, with the outcome the job answered; dry runs left out', () => {
    const m = metric('job-runs');
    const selected = selectedBy(m, all());
    const runs = jobAnswers.filter((a) => a.body.outcome !== 'dry_run');
    expect(runs.map((a) => a.body.outcome)).toEqual([
      'published',
      'refused',
      'published',
      'unchanged',
      'unchanged',
    ]);
    const labels = (s: (typeof selected)[number]) =>
      Object.fromEntries(
        Object.entries(m?.labelExtractors ?? {}).map(([k, x]) => [k, extract(x, s.entry)]),
      );
    expect(selected.map(labels).sort(byJson)).toEqual(
      runs.map((a) => ({ job: a.body.job, outcome: a.body.outcome })).sort(byJson),
    );
  });

  it('mapping-near-budget: the mapping runs at or over 90% of MAPPING_MAX_BYTES', () => {
    const s = settings();
    const near = Math.floor((s.MAPPING_MAX_BYTES ?? 0) * s.ALERT_MAPPING_BUDGET_RATIO);
    const selected = selectedBy(metric('mapping-near-budget'), all());
    const expected = jobAnswers.filter(
      (a) => a.body.job === 'snapshotMapping' && Number(a.body.memoryBytes) >= near,
    );
    expect(expected.length).toBe(3);
    const outcome = (summary: unknown) => (summary as Line).outcome;
    expect(selected.map((e) => outcome((e.entry.jsonPayload as Line).summary)).sort()).toEqual(
      expected.map((a) => a.body.outcome).sort(),
    );
  });

  it('snapshots-served and snapshot-age: each refresh check, with the version and age served', () => {
    const served = selectedBy(metric('snapshots-served'), all());
    const ages = selectedBy(metric('snapshot-age'), all());
    expect(ages).toEqual(served);
    expect(served.every((s) => s.proc === profile)).toBe(true);
    const published = (job: string) =>
      jobAnswers.find((a) => a.body.job === job && a.body.outcome === 'published')?.body.version;
    const byKind = (kind: string) =>
      served.filter((s) => extract('EXTRACT(jsonPayload.snapshot)', s.entry) === kind);
    expect(byKind('catalog').length).toBeGreaterThan(1);
    expect(
      new Set(byKind('catalog').map((s) => extract('EXTRACT(jsonPayload.version)', s.entry))),
    ).toEqual(new Set([published('snapshotCatalog')]));
    expect(
      new Set(byKind('mapping').map((s) => extract('EXTRACT(jsonPayload.version)', s.entry))),
    ).toEqual(new Set([published('snapshotMapping')]));
    const catalogAge = Number(
      extract('EXTRACT(jsonPayload.ageSecs)', byKind('catalog')[0]?.entry ?? {}),
    );
    expect(catalogAge).toBeGreaterThan(3 * 86_400 - 600);
    expect(
      Number(extract('EXTRACT(jsonPayload.ageSecs)', byKind('mapping')[0]?.entry ?? {})),
    ).toBeLessThan(600);
  });

  it("stale-snapshots: the three-day-old catalog (MAX_STALENESS_SECS is two days), not the day's mapping", () => {
    const selected = selectedBy(metric('stale-snapshots'), all());
    expect(selected.length).toBeGreaterThan(1);
    expect(new Set(selected.map((s) => extract('EXTRACT(jsonPayload.snapshot)', s.entry)))).toEqual(
      new Set(['catalog']),
    );
    expect(selected.every((s) => s.entry.severity === 'WARNING')).toBe(true);
  });

  it('refresh-failures: only while GCS fails, once a load failed 3 times in a row', () => {
    const selected = selectedBy(metric('refresh-failures'), all());
    expect(selected.length).toBeGreaterThan(0);
    for (const s of selected) {
      expect(s.proc).toBe(profile);
      expect(s.index).toBeGreaterThanOrEqual(beforeFault);
      expect(s.index).toBeLessThan(afterFault);
    }
    // Every failed load of the fault window from the third in a row on, and nothing else.
    const failed = profile.lines
      .slice(beforeFault, afterFault)
      .filter((l) => String(l.message).endsWith('snapshot load failed'));
    expect(failed.length).toBeGreaterThan(selected.length);
    expect(selected.length).toBe(failed.filter((l) => Number(l.failures) >= 3).length);
  });

  it('every metric of the mode selects something here, and nothing of the other services', () => {
    const everything = all();
    for (const m of logMetrics(settings())) {
      if (m.name.endsWith('scheduler-failed-attempts')) continue; // Cloud Scheduler's lines, below
      const selected = selectedBy(m, everything);
      expect(selected.length, m.name).toBeGreaterThan(0);
    }
    const foreign = everything.map((e) => ({
      ...e,
      entry: {
        ...e.entry,
        resource: { type: 'cloud_run_revision', labels: { service_name: 'other-app' } },
      },
    }));
    for (const m of logMetrics(settings())) expect(selectedBy(m, foreign), m.name).toEqual([]);
  });
});

describe('the scheduler metric', () => {
  // Cloud Scheduler writes these, not our functions: entries in the shape Google documents for
  // its executions log (jsonPayload @type AttemptFinished, the target's status, ERROR on failure).
  const attempt = (job: string, status: number, error?: string) => ({
    logName: `projects/${PROJECT}/logs/cloudscheduler.googleapis.com%2Fexecutions`,
    resource: {
      type: 'cloud_scheduler_job',
      labels: { job_id: job, location: REGION, project_id: PROJECT },
    },
    severity: error ? 'ERROR' : 'INFO',
    httpRequest: { status },
    jsonPayload: {
      '@type': 'type.googleapis.com/google.cloud.scheduler.logging.AttemptFinished',
      jobName: `projects/${PROJECT}/locations/${REGION}/jobs/${job}`,
      targetType: 'HTTP',
      url: `https://${job}-abc123-ew.a.run.app/`,
      ...(error ? { status: error } : {}),
    },
  });
  const started = (job: string) => ({
    ...attempt(job, 0),
    severity: 'INFO',
    jsonPayload: { '@type': 'type.googleapis.com/google.cloud.scheduler.logging.AttemptStarted' },
  });

  it("counts this deployment's failed attempts only", () => {
    const s = loadOpsSettings({
      PROJECT_ID: PROJECT,
      NAME_PREFIX: PREFIX,
      PROFILE_REGIONS: REGION,
    });
    const m = logMetrics(s).find((x) => x.name === `${PREFIX}-scheduler-failed-attempts`);
    const lines = [
      attempt(`${PREFIX}-snapshot-catalog`, 503, 'UNAVAILABLE'),
      attempt(`${PREFIX}-snapshot-mapping`, 500, 'INTERNAL'),
      attempt(`${PREFIX}-snapshot-mapping`, 200),
      started(`${PREFIX}-snapshot-mapping`),
      attempt('someone-elses-job', 500, 'INTERNAL'),
      attempt(`${PREFIX}-sync-mapping`, 500, 'INTERNAL'),
    ];
    expect(lines.map((l) => matchesLogFilter(m?.filter ?? '', l))).toEqual([
      true,
      true,
      false,
      false,
      false,
      // Snapshot mode has no sync job.
      false,
    ]);
  });
});

describe('the log-based metrics (Bigtable mode)', () => {
  let bigtable: BigtableEmulator;
  let sync: Running;
  const answers: Record<string, unknown>[] = [];

  beforeAll(async () => {
    bigtable = await BigtableEmulator.start();
    process.env.BIGTABLE_EMULATOR_HOST = bigtable.host;
    const table = await createMappingTable('identity-mapping', 1);
    await table.bigtable.close();
    // Three days later: the partition synced ended two days before.
    sync = await start(
      'syncMapping',
      `${PREFIX}-sync-mapping`,
      { ...stack.env, ...bigtableEnv('identity-mapping'), BIGTABLE_EMULATOR_HOST: bigtable.host },
      3 * DAY_MS,
    );
    for (let i = 0; i < 2; i++) {
      const answer = await post(sync);
      expect(answer.status).toBe(200);
      answers.push(answer.body);
    }
  }, 120_000);

  afterAll(async () => {
    await sync?.stop();
    await bigtable?.close();
    delete process.env.BIGTABLE_EMULATOR_HOST;
  });

  it('sync-lag and sync-late: each run, with how long ago the checkpoint partition ended', () => {
    const env = {
      PROJECT_ID: PROJECT,
      NAME_PREFIX: PREFIX,
      PROFILE_REGIONS: REGION,
      MAPPING_STORE: 'bigtable',
      ALERT_SYNC_LAG_HOURS: '24',
    };
    const s = loadOpsSettings(env);
    const metrics = logMetrics(s);
    const get = (key: string) => metrics.find((m) => m.name === `${PREFIX}-${key}`);
    expect(answers.map((a) => a.outcome)).toEqual(['synced', 'unchanged']);
    const lag = selectedBy(get('sync-lag'), entries(sync));
    expect(lag).toHaveLength(2);
    // The current version's partition (the sync's checkpoint).
    const version = String(answers[0]?.version);
    const ended = Date.parse(`${version}T00:00:00Z`) + DAY_MS;
    for (const l of lag) {
      const age = Number(extract(get('sync-lag')?.valueExtractor ?? '', l.entry));
      // The process's clock is three days ahead of this one.
      expect(Math.abs(age - (Date.now() + 3 * DAY_MS - ended) / 1000)).toBeLessThan(600);
    }
    expect(selectedBy(get('sync-late'), entries(sync))).toEqual(lag);
    const runs = selectedBy(get('job-runs'), entries(sync));
    expect(runs.map((r) => extract('EXTRACT(jsonPayload.summary.outcome)', r.entry))).toEqual([
      'synced',
      'unchanged',
    ]);
    const fresh = loadOpsSettings({ ...env, ALERT_SYNC_LAG_HOURS: '96' });
    expect(
      selectedBy(
        logMetrics(fresh).find((m) => m.name.endsWith('sync-late')),
        entries(sync),
      ),
    ).toEqual([]);
  });
});

function byJson(a: unknown, b: unknown): number {
  return JSON.stringify(a) < JSON.stringify(b) ? -1 : 1;
}
