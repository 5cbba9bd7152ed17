import { ObjectId } from 'bson';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type CatalogJobDeps,
  createSnapshotCatalogHandler,
} from '../../functions/snapshot-catalog/handler.js';
import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import { MongoCatalogSource } from '../../shared/catalog/mongo-catalog-source.js';
import { BackendUnavailableError } from '../../shared/errors.js';
import { loadSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';
import { parseManifest } from '../../shared/snapshots/manifest.js';
import { MongoEmulator } from '../emulators/mongo-emulator.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { MANUAL_RUN } from '../helpers/scheduled-event.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const updatedAt = new Date('2026-11-20T10:00:00Z');

let mongo: MongoEmulator;
let source: MongoCatalogSource;

function goodSegments(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    _id: new ObjectId(),
    segment_id: 5000 + i,
    name: `segment-${i}`,
    type: i % 2 ? 'interest' : 'behavioral',
    size: 1000 * i,
    description: `about ${i}`,
    updated_at: updatedAt,
  }));
}

beforeAll(async () => {
  mongo = await MongoEmulator.start();
  source = new MongoCatalogSource({
    uri: mongo.uri,
    database: 'adtech',
    collection: 'segments',
    idField: 'segment_id',
    fields: undefined,
    batchSize: 100,
    maxTimeMs: 5_000,
    connectTimeoutMs: 2_000,
  });
});

afterAll(async () => {
  await source.close();
  await mongo.close();
});

beforeEach(() => mongo.clearFaults());

async function setup(docs: Record<string, unknown>[]) {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(mongo.uri);
  const coll = client.db('adtech').collection('segments');
  await coll.deleteMany({});
  if (docs.length > 0) await coll.insertMany(docs);
  await client.close();
  const store = new LocalSnapshotStore(await tempDir());
  const { log, lines } = captureLogger();
  const deps: CatalogJobDeps = {
    config: { MIN_ROWS_RATIO: 0.5, JOB_TIMEOUT_MS: 30_000 },
    source,
    store,
    log,
    now: Date.now,
  };
  return { store, lines, run: createSnapshotCatalogHandler(deps) };
}

async function currentManifest(store: LocalSnapshotStore) {
  const stored = await store.readManifest('catalog');
  return stored && parseManifest(stored.body, 'catalog');
}

describe('snapshotCatalog on the MongoDB driver', () => {
  it('streams the collection into a catalog snapshot, skipping bad documents', async () => {
    const bad = [
      { _id: new ObjectId(), segment_id: 9001, type: 'x' }, // no name
      { _id: new ObjectId(), name: 'no id' },
      { _id: new ObjectId(), segment_id: 5001, name: 'duplicate of 5001' },
    ];
    const { store, lines, run } = await setup([...goodSegments(250), ...bad]);
    const summary = await run(MANUAL_RUN, {});
    expect(summary).toMatchObject({
      job: 'snapshotCatalog',
      outcome: 'published',
      rows: 250,
      skipped: 3,
      source: { source: 'mongodb adtech.segments' },
    });
    expect(lines.filter((l) => l.message === 'skipping invalid catalog document')).toHaveLength(3);
    expect(lines.at(-1)?.message).toMatch(
      /^snapshotCatalog: published .* 250 rows, \d+ bytes, 3 skipped/,
    );

    const loaded = await loadSnapshot(store, catalogCodec, undefined, { stallTimeoutMs: 5_000 });
    expect(loaded?.manifest.version).toBe(summary.version);
    const json = loaded?.value.find(5007)?.bytes.toString();
    expect(JSON.parse(json ?? 'null')).toEqual({
      id: '5007',
      name: 'segment-7',
      type: 'interest',
      size: 7000,
      description: 'about 7',
      updated_at: '2026-11-20T10:00:00.000Z',
    });
  });

  it('asks MongoDB for a sorted, projected, batched cursor with a server time limit', async () => {
    const { run } = await setup(goodSegments(250));
    const before = mongo.commands.length;
    await run(MANUAL_RUN, {});
    const commands = mongo.commands
      .slice(before)
      .filter((c) => c.name === 'find' || c.name === 'getMore');
    expect(commands[0]?.body).toMatchObject({
      find: 'segments',
      projection: { _id: 0 },
      sort: { segment_id: 1 },
      batchSize: 100,
      maxTimeMS: 5_000,
    });
    expect(commands.filter((c) => c.name === 'getMore')).toHaveLength(2);
  });

  it('publishes nothing new when run again on unchanged data', async () => {
    const { store, run } = await setup(goodSegments(40));
    const first = await run(MANUAL_RUN, {});
    const second = await run(MANUAL_RUN, {});
    expect(second).toMatchObject({ outcome: 'unchanged', version: first.version });
    expect((await store.listObjects('catalog/')).filter((n) => n.endsWith('.gz'))).toHaveLength(1);
  });

  it('leaves the current snapshot when MongoDB fails mid-stream', async () => {
    const { store, run } = await setup(goodSegments(250));
    const first = await run(MANUAL_RUN, {});
    mongo.inject({
      command: 'getMore',
      nth: 2,
      errorCode: 50,
      errmsg: 'operation exceeded time limit',
    });
    await expect(run(MANUAL_RUN, {})).rejects.toThrow(BackendUnavailableError);
    expect((await currentManifest(store))?.version).toBe(first.version);
    expect(await store.listObjects('catalog/')).toEqual([
      `catalog/${first.version}.json.gz`,
      `catalog/${first.version}.manifest.json`,
      'catalog/manifest.json',
    ]);
  });

  it('refuses a catalog that shrank past the ratio unless forced', async () => {
    const { store, lines, run } = await setup(goodSegments(100));
    const first = await run(MANUAL_RUN, {});
    const { MongoClient } = await import('mongodb');
    const client = new MongoClient(mongo.uri);
    await client.db('adtech').collection('segments').deleteMany({});
    await client.db('adtech').collection('segments').insertMany(goodSegments(10));
    await client.close();
    // A refusal is an answer, not a failure: the scheduler must not re-run the whole scan.
    expect(await run(MANUAL_RUN, {})).toMatchObject({
      outcome: 'refused',
      reason: expect.stringMatching(/10 rows: below 0.5 of the current 100/),
      version: first.version,
      rows: 10,
    });
    expect(lines.find((l) => String(l.message).includes('refused'))).toMatchObject({
      severity: 'ERROR',
    });
    expect((await currentManifest(store))?.version).toBe(first.version);
    const forced = await run({ ...MANUAL_RUN, force: true }, {});
    expect(forced).toMatchObject({
      outcome: 'published',
      rows: 10,
      previousVersion: first.version,
    });
  });

  it('stops at the job deadline', async () => {
    const { store, run } = await setup(goodSegments(250));
    mongo.inject({ command: 'getMore', delayMs: 3_000 });
    const deps = { signal: AbortSignal.timeout(300) };
    const started = Date.now();
    await expect(run(MANUAL_RUN, deps)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2_900);
    expect(await store.readManifest('catalog')).toBeUndefined();
  });
});
