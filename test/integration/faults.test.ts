import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type DemoDataset, generateDemoDataset } from '../../shared/demo/demo-dataset.js';
import { eventually } from '../helpers/eventually.js';
import { type LocalStack, startLocalStack } from '../helpers/local-stack.js';
import { type ServedFunction, serveFunction } from '../helpers/serve-function.js';

// Faults injected through the test servers' switches while the profile function serves on the
// production adapters. (Sources failing mid-stream and racing publishers are covered where the
// jobs and the stores are tested: snapshot-catalog, snapshot-mapping, gcs-snapshot-store.)
let stack: LocalStack;
let data: DemoDataset;
let extraPersons = 0;
let profileUrl: string;
let mappingJobUrl: string;
const servers: ServedFunction[] = [];

async function serve(target: string): Promise<string> {
  const served = await serveFunction(target);
  servers.push(served);
  return served.url;
}

async function ask(path: string) {
  const started = Date.now();
  const res = await fetch(`${profileUrl}${path}`);
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, headers: res.headers, body, ms: Date.now() - started };
}

async function runJob(url: string, force = false) {
  const res = await fetch(`${url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ force }),
  });
  return { status: res.status, body: (await res.json()) as { version?: string } };
}

beforeAll(async () => {
  stack = await startLocalStack();
  data = generateDemoDataset({
    seed: 5,
    persons: 200,
    segments: 40,
    orphanProfiles: 10,
    superNodeIds: 55,
  });
  await stack.seed(data);
  Object.assign(process.env, stack.env, {
    REQUEST_BUDGET_MS: '400',
    AEROSPIKE_TOTAL_TIMEOUT_MS: '300',
    AEROSPIKE_SOCKET_TIMEOUT_MS: '150',
    AEROSPIKE_MAX_RETRIES: '0',
    REFRESH_INTERVAL_SECS: '1',
    REFRESH_RETRY_MAX_SECS: '1',
    SNAPSHOT_TIMEOUT_MS: '500',
    LOG_LEVEL: 'ERROR',
  });
  await import('../../functions/index.js');
  const catalogJobUrl = await serve('snapshotCatalog');
  mappingJobUrl = await serve('snapshotMapping');
  expect((await runJob(catalogJobUrl)).status).toBe(200);
  expect((await runJob(mappingJobUrl)).status).toBe(200);
  profileUrl = await serve('profile');
  expect((await ask(`/?id=${data.samples.linked}`)).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await stack.close();
});

beforeEach(async () => {
  await stack.aerospike.setMode({ kind: 'normal' });
  stack.gcs.clearFaults();
});

describe('Aerospike faults', () => {
  it.each([
    ['silent', { kind: 'silent' as const }],
    ['slow', { kind: 'slow' as const, delayMs: 2_000 }],
    ['dropping connections', { kind: 'drop' as const }],
  ])(
    'answers 503 within the deadline while Aerospike is %s, then 200 without restart',
    async (_what, mode) => {
      await stack.aerospike.setMode(mode);
      const down = await ask(`/?id=${data.samples.linked}`);
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toBe('5');
      expect(down.body).toEqual({
        error: {
          code: 'store_unavailable',
          message: 'the profile store is unavailable; retry later',
        },
      });
      expect(down.ms).toBeLessThan(1_500);
      const health = await ask('/health');
      expect(health.status).toBe(503);
      expect(health.body).toMatchObject({ status: 'unavailable', store: { ok: false } });

      await stack.aerospike.setMode({ kind: 'normal' });
      expect((await ask(`/?id=${data.samples.linked}`)).status).toBe(200);
      expect((await ask('/health')).body).toMatchObject({ store: { ok: true } });
    },
  );

  it('answers only 200 or 503, each within the deadline, while Aerospike flaps', async () => {
    let flapping = true;
    const flapper = (async () => {
      for (let i = 0; flapping; i++) {
        await stack.aerospike.setMode(i % 2 === 0 ? { kind: 'silent' } : { kind: 'normal' });
        await new Promise((r) => setTimeout(r, 120));
      }
    })();
    const seen = new Map<number, number>();
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline) {
      const answers = await Promise.all(
        [data.samples.linked, data.samples.orphan, data.samples.superNode].map((id) =>
          ask(`/?id=${id}`),
        ),
      );
      for (const a of answers) {
        seen.set(a.status, (seen.get(a.status) ?? 0) + 1);
        expect([200, 503]).toContain(a.status);
        expect(a.ms).toBeLessThan(1_500);
      }
    }
    flapping = false;
    await flapper;
    await stack.aerospike.setMode({ kind: 'normal' });
    expect(seen.get(200)).toBeGreaterThan(0);
    expect(seen.get(503)).toBeGreaterThan(0);
    await eventually(async () =>
      expect((await ask(`/?id=${data.samples.linked}`)).status).toBe(200),
    );
  });
});

describe('GCS faults during a refresh', () => {
  it.each([
    ['slow', { delayMs: 2_000 }],
    ['failing', { status: 503 }],
    ['truncating', { truncateBodyAt: 20 }],
  ])(
    'keeps serving the last good snapshot, fast, while GCS is %s, and reports it',
    async (_what, fault) => {
      const good = (await ask(`/?id=${data.samples.linked}`)).headers.get('x-mapping-version');
      // One more person in the partition, so that the job publishes a new version.
      extraPersons++;
      stack.addMappingRows([
        {
          person: `extra-${extraPersons}`,
          id: String(9_000_000_000 + extraPersons),
          typeCode: '444444',
        },
      ]);
      // Data object downloads only (the profile function's), so that the job itself can publish.
      stack.gcs.inject({
        ...fault,
        match: (req) => req.method === 'GET' && req.path.includes('.ndjson.gz'),
      });
      const next = await runJob(mappingJobUrl);
      expect(next.status).toBe(200);
      await eventually(async () => {
        const h = await ask('/health');
        expect(h.body).toMatchObject({
          status: 'degraded',
          snapshots: { mapping: { version: good } },
        });
        expect(
          (h.body.snapshots as { mapping: { consecutiveFailures: number } }).mapping
            .consecutiveFailures,
        ).toBeGreaterThan(0);
      });
      for (let i = 0; i < 10; i++) {
        const res = await ask(`/?id=${data.samples.linked}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('x-mapping-version')).toBe(good);
        expect(res.ms).toBeLessThan(500); // the stalled refresh never blocks a request
      }
      stack.gcs.clearFaults();
      await eventually(async () => {
        expect((await ask(`/?id=${data.samples.linked}`)).headers.get('x-mapping-version')).toBe(
          next.body.version,
        );
      });
    },
  );
});
