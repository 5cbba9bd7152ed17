import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';
import { parseManifest } from '../../shared/snapshots/manifest.js';
import { MongoEmulator } from '../emulators/mongo-emulator.js';
import { type ServedFunction, serveFunction } from '../helpers/serve-function.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

// The catalog job as Cloud Scheduler's HTTP target calls it: through functions-framework,
// configured by environment variables only.
let mongo: MongoEmulator;
let served: ServedFunction;
let url: string;
let dir: string;
let store: LocalSnapshotStore;

const SCHEDULER = {
  'content-type': 'application/json',
  'x-cloudscheduler': 'true',
  'x-cloudscheduler-jobname': 'projects/p/locations/l/jobs/snapshot-catalog',
  'x-cloudscheduler-scheduletime': '2026-11-26T03:00:00Z',
};

async function seed(n: number) {
  const client = new MongoClient(mongo.uri);
  const coll = client.db('adtech').collection('segments');
  await coll.deleteMany({});
  await coll.insertMany(Array.from({ length: n }, (_, i) => ({ segment_id: i, name: `s${i}` })));
  await client.close();
}

beforeAll(async () => {
  mongo = await MongoEmulator.start();
  dir = await makeTempDir();
  store = new LocalSnapshotStore(join(dir, 'snapshots'));
  Object.assign(process.env, {
    SNAPSHOT_URI: `file:${join(dir, 'snapshots')}`,
    MONGO_URI: mongo.uri,
    MONGO_DATABASE: 'adtech',
    MONGO_CONNECT_TIMEOUT_MS: '2000',
    LOG_LEVEL: 'ERROR',
  });
  await import('../../functions/index.js');
  served = await serveFunction('snapshotCatalog');
  url = `${served.url}/`;
});

afterAll(async () => {
  await served.close();
  const { catalogJob } = await import('../../functions/snapshot-catalog/runtime.js');
  void catalogJob; // the module-scope Mongo client closes with the emulator's sockets
  await mongo.close();
  await removeTempDir(dir);
});

describe('snapshotCatalog over HTTP', () => {
  it('publishes on a scheduler POST and answers the summary', async () => {
    await seed(30);
    const res = await fetch(url, { method: 'POST', headers: SCHEDULER, body: '{}' });
    expect(res.status).toBe(200);
    const summary = (await res.json()) as { outcome: string; rows: number; version: string };
    expect(summary).toMatchObject({ outcome: 'published', rows: 30 });
    const stored = await store.readManifest('catalog');
    expect(stored && parseManifest(stored.body, 'catalog').version).toBe(summary.version);
  });

  it('answers a refusal with 200 "refused" (a scheduler retry cannot fix it), and publishes with {"force": true}', async () => {
    await seed(3);
    const refused = await fetch(url, { method: 'POST', headers: SCHEDULER });
    expect(refused.status).toBe(200);
    expect(await refused.json()).toMatchObject({
      outcome: 'refused',
      reason: expect.stringMatching(/refusing to publish catalog with 3 rows/),
    });
    const forced = await fetch(url, { method: 'POST', headers: SCHEDULER, body: '{"force":true}' });
    expect(forced.status).toBe(200);
    expect(await forced.json()).toMatchObject({ outcome: 'published', rows: 3 });
  });

  it('answers 503 when MongoDB fails, so that the scheduler retries', async () => {
    mongo.inject({ command: 'find', errorCode: 1, errmsg: 'boom', times: 2 });
    const res = await fetch(url, { method: 'POST', headers: SCHEDULER });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { code: 'source_unavailable' } });
    mongo.clearFaults();
  });

  it.each([
    ['GET', undefined, 405, 'method_not_allowed'],
    ['POST', '{"force":"yes"}', 400, 'invalid_body'],
    ['POST', '{"other":1}', 400, 'invalid_body'],
    ['POST', '{"dryRun":true}', 400, 'invalid_body'],
    ['POST', '{"rollbackTo":"yesterday"}', 400, 'invalid_body'],
    ['POST', '{"rollbackTo":"20261101T000000Z-00000000"}', 404, 'unknown_version'],
  ])('%s %s -> %i', async (method, body, status, code) => {
    const res = await fetch(url, { method, headers: SCHEDULER, ...(body ? { body } : {}) });
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error: { code } });
  });
});
