import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DemoDataset,
  generateDemoDataset,
  UNKNOWN_SEGMENT_BASE,
} from '../../shared/demo/demo-dataset.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { expectedProfile } from '../helpers/expected-profiles.js';
import { type LocalStack, startLocalStack } from '../helpers/local-stack.js';
import { orderedKeys } from '../helpers/ordered-keys.js';
import { type ServedFunction, serveFunction } from '../helpers/serve-function.js';

// All four real clients together: MongoDB and BigQuery feed the two scheduled functions, which
// publish to GCS; the profile function reads those snapshots and Aerospike, all through
// functions-framework with the production adapters, configured by environment variables only.
const registry = defaultIdTypeRegistry();
let stack: LocalStack;
let data: DemoDataset;
const servers: ServedFunction[] = [];
const urls = new Map<string, string>();

async function serve(target: string): Promise<string> {
  const served = await serveFunction(target);
  servers.push(served);
  return served.url;
}

async function profile(id: string) {
  const started = Date.now();
  const res = await fetch(`${urls.get('profile')}/?id=${encodeURIComponent(id)}`);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, ms: Date.now() - started };
}

/**
 * Every id of the person holding `id`, requested one first, then the others ordered by id and
 * type code (the documented order); an id the mapping does not know stands alone with the type
 * of its profile record.
 */
function personOf(id: string) {
  const record = data.profiles.find((p) => p.key === id);
  const alone = record ? [{ id, typeCode: record.set }] : [];
  const person = data.persons.find((p) => p.some((e) => e.id === id)) ?? alone;
  const self = person.filter((e) => e.id === id);
  const byIdThenType = (a: { id: string; typeCode: string }, b: typeof a) =>
    a.id === b.id ? compare(a.typeCode, b.typeCode) : compare(a.id, b.id);
  return [...self, ...person.filter((e) => e.id !== id).sort(byIdThenType)];
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function expectedFor(id: string) {
  const now = Math.floor(Date.now() / 1000);
  return Object.fromEntries(
    personOf(id).map((e) => [e.id, expectedProfile(data, registry, e.id, e.typeCode, now)]),
  );
}

beforeAll(async () => {
  stack = await startLocalStack();
  data = generateDemoDataset({
    seed: 42,
    persons: 300,
    segments: 60,
    orphanProfiles: 20,
    superNodeIds: 60,
  });
  await stack.seed(data);
  Object.assign(process.env, stack.env, {
    REQUEST_BUDGET_MS: '500',
    AEROSPIKE_TOTAL_TIMEOUT_MS: '400',
    AEROSPIKE_SOCKET_TIMEOUT_MS: '200',
    AEROSPIKE_MAX_RETRIES: '0',
    LOG_LEVEL: 'ERROR',
  });
  await import('../../functions/index.js');
  for (const target of ['snapshotCatalog', 'snapshotMapping', 'profile'])
    urls.set(target, await serve(target));
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await stack.close();
});

describe('the whole pipeline on the real clients', () => {
  it('publishes both snapshots from MongoDB and BigQuery through the scheduled functions', async () => {
    for (const [target, rows] of [
      ['snapshotCatalog', data.segments.length],
      ['snapshotMapping', data.persons.flat().length],
    ] as const) {
      const res = await fetch(`${urls.get(target)}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-cloudscheduler': 'true' },
        body: '{}',
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ outcome: 'published', rows, skipped: 0 });
    }
    const objects = stack.gcs.listObjectNames('profile-api-snapshots');
    expect(objects.filter((n) => n.endsWith('/manifest.json'))).toEqual([
      'profile-api/catalog/manifest.json',
      'profile-api/mapping/manifest.json',
    ]);
  });

  it('answers a person with linked ids exactly as the sources say', async () => {
    const res = await profile(data.samples.linked);
    expect(res.status).toBe(200);
    expect(orderedKeys(res.text)).toEqual(personOf(data.samples.linked).map((e) => e.id));
    expect(JSON.parse(res.text)).toEqual(expectedFor(data.samples.linked));
  });

  it('drops expired segments and reports unknown ones', async () => {
    const withExpired = data.profiles.find(
      (p) =>
        !Array.isArray(p.bins.segments) &&
        Object.values(p.bins.segments as object).includes(data.expiredAt),
    );
    const withUnknown = data.profiles.find(
      (p) =>
        Array.isArray(p.bins.segments) &&
        (p.bins.segments as number[]).some((s) => s >= UNKNOWN_SEGMENT_BASE),
    );
    for (const record of [withExpired, withUnknown]) {
      expect(record).toBeDefined();
      const id = record?.key ?? '';
      const res = await profile(id);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text)).toEqual(expectedFor(id));
    }
    const expired = Object.entries(withExpired?.bins.segments as Record<string, number>)
      .filter(([, e]) => e === data.expiredAt)
      .map(([s]) => s);
    const body = JSON.parse((await profile(withExpired?.key ?? '')).text) as Record<
      string,
      { segments: { id: string }[]; unknownSegmentIds: string[] }
    >;
    const served = body[withExpired?.key ?? '']?.segments.map((s) => s.id) ?? [];
    expect(served.filter((s) => expired.includes(s))).toEqual([]);
  });

  it('answers an id that only Aerospike knows, and 404 for ids nobody knows', async () => {
    const orphan = await profile(data.samples.orphan);
    expect(orphan.status).toBe(200);
    expect(JSON.parse(orphan.text)).toEqual(expectedFor(data.samples.orphan));
    expect((await profile('ffffffff-ffff-4fff-8fff-ffffffffffff')).status).toBe(404);
    expect((await profile('9999999999')).status).toBe(404);
  });

  it('answers 503 within the deadline while Aerospike is silent, then 200 again without restart', async () => {
    await stack.aerospike.setMode({ kind: 'silent' });
    const down = await profile(data.samples.linked);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    expect(JSON.parse(down.text)).toMatchObject({ error: { code: 'store_unavailable' } });
    expect(down.ms).toBeLessThan(1_500);

    await stack.aerospike.setMode({ kind: 'normal' });
    const up = await profile(data.samples.linked);
    expect(up.status).toBe(200);
    expect(JSON.parse(up.text)).toEqual(expectedFor(data.samples.linked));
  });

  it('makes one batch round trip to Aerospike per request', async () => {
    await stack.aerospike.resetStats();
    await profile(data.samples.linked);
    await profile(data.samples.superNode);
    const stats = await stack.aerospike.stats();
    expect(stats.batchReads + stats.reads).toBe(2);
  });
});
