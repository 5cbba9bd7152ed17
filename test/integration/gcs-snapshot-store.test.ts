import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import type { Segment } from '../../shared/catalog/segment.js';
import {
  BackendUnavailableError,
  PreconditionFailedError,
  SnapshotIntegrityError,
} from '../../shared/errors.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { type MappingPerson, mappingCodec } from '../../shared/mapping/mapping-codec.js';
import { GcsSnapshotStore } from '../../shared/snapshots/gcs-snapshot-store.js';
import { loadSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { parseManifest } from '../../shared/snapshots/manifest.js';
import { publishSnapshot } from '../../shared/snapshots/publish-snapshot.js';
import { GcsEmulator } from '../emulators/gcs-emulator.js';

const BUCKET = 'profile-snapshots';
const LOAD = { stallTimeoutMs: 1_000 };
const mapping = mappingCodec(defaultIdTypeRegistry());

let gcs: GcsEmulator;
let prefixNo = 0;

function newStore(chunkBytes?: number): GcsSnapshotStore {
  prefixNo++;
  return new GcsSnapshotStore(
    `gs://${BUCKET}/env-${prefixNo}`,
    { requestTimeoutMs: 2_000, ...(chunkBytes ? { uploadChunkBytes: chunkBytes } : {}) },
    { apiEndpoint: gcs.baseUrl, projectId: 'test' },
  );
}

function segments(n: number, tag = ''): Segment[] {
  return Array.from({ length: n }, (_, i) => ({ id: String(i), name: `s${i}${tag}` }));
}

function publishCatalog(store: GcsSnapshotStore, n: number, tag = '') {
  return publishSnapshot(store, catalogCodec, Readable.from(segments(n, tag)), {
    source: { collection: 'segments' },
    minRowsRatio: 0.5,
  });
}

beforeAll(async () => {
  gcs = await GcsEmulator.start();
  gcs.createBucket(BUCKET);
});

afterAll(async () => {
  await gcs.close();
});

beforeEach(() => gcs.clearFaults());

describe('GcsSnapshotStore on the real client', () => {
  it('publishes a data object and a manifest under the prefix, and loads them back', async () => {
    const store = newStore();
    const { manifest } = await publishCatalog(store, 20);
    const names = gcs.listObjectNames(BUCKET).filter((n) => n.startsWith(`env-${prefixNo}/`));
    expect(names).toEqual([
      `env-${prefixNo}/catalog/${manifest.version}.json.gz`,
      `env-${prefixNo}/catalog/${manifest.version}.manifest.json`,
      `env-${prefixNo}/catalog/manifest.json`,
    ]);
    const stored = gcs.getObject(BUCKET, `env-${prefixNo}/catalog/manifest.json`);
    expect(stored?.contentType).toBe('application/json');
    expect(parseManifest(stored?.data.toString() ?? '', 'catalog')).toEqual(manifest);

    const loaded = await loadSnapshot(store, catalogCodec, undefined, LOAD);
    expect(loaded?.manifest.version).toBe(manifest.version);
    expect(loaded?.value.size).toBe(20);
    expect(await store.listObjects('catalog/')).toEqual([
      `catalog/${manifest.version}.json.gz`,
      `catalog/${manifest.version}.manifest.json`,
      'catalog/manifest.json',
    ]);
  });

  it('streams a large mapping in resumable chunks', async () => {
    const store = newStore(256 * 1024);
    async function* persons(): AsyncIterable<MappingPerson> {
      for (let i = 0; i < 60_000; i++) {
        yield [
          {
            id: `${i.toString(16).padStart(8, '0')}-aaaa-4aaa-8aaa-aaaaaaaaaaaa`,
            typeCode: '222222',
          },
          { id: String(1_000_000 + i), typeCode: '444444' },
        ];
      }
    }
    const before = gcs.requests.length;
    const { manifest } = await publishSnapshot(store, mapping, persons(), {
      source: {},
      minRowsRatio: 0.5,
    });
    expect(manifest.rows).toBe(120_000);
    const chunkPuts = gcs.requests.slice(before).filter((r) => r.method === 'PUT');
    expect(chunkPuts.length).toBeGreaterThan(1);
    const loaded = await loadSnapshot(store, mapping, undefined, LOAD);
    expect(loaded?.value.lookup('1000007', '444444', 5)?.linkedTotal).toBe(1);
  });

  it('lets exactly one of two racing publishers replace the manifest', async () => {
    const store = newStore();
    await publishCatalog(store, 10);
    const results = await Promise.allSettled([
      publishCatalog(store, 11, 'a'),
      publishCatalog(store, 12, 'b'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(PreconditionFailedError);
    expect((await store.listObjects('catalog/')).filter((n) => n.endsWith('.gz'))).toHaveLength(2);
  });

  it.each([
    ['corrupted bytes', { corruptBody: true }, SnapshotIntegrityError],
    ['a truncated body', { truncateBodyAt: 100 }, BackendUnavailableError],
    ['a 503', { status: 503, times: 10 }, BackendUnavailableError],
    ['a stall', { delayMs: 3_000 }, BackendUnavailableError],
  ])('rejects a download with %s', async (_what, fault, errorClass) => {
    const store = newStore();
    const { manifest } = await publishCatalog(store, 500);
    gcs.inject({
      ...fault,
      match: (req) => req.query.get('alt') === 'media' && req.path.endsWith('.json.gz'),
    });
    const err = await loadSnapshot(store, catalogCodec, undefined, LOAD).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(errorClass);
    gcs.clearFaults();
    expect((await loadSnapshot(store, catalogCodec, undefined, LOAD))?.manifest.version).toBe(
      manifest.version,
    );
  });

  it('rejects an object replaced behind the manifest', async () => {
    const store = newStore();
    const { manifest } = await publishCatalog(store, 50);
    const { gzipSync } = await import('node:zlib');
    gcs.putObject(
      BUCKET,
      `env-${prefixNo}/${manifest.object}`,
      gzipSync('{"schemaVersion":1,"segments":[]}'),
    );
    await expect(loadSnapshot(store, catalogCodec, undefined, LOAD)).rejects.toThrow(
      /sha256 differs/,
    );
  });
});

describe('retention', () => {
  it('marks the superseded version for the lifecycle rule, never the current one', async () => {
    const store = newStore();
    const first = await publishCatalog(store, 10);
    const second = await publishCatalog(store, 11);
    await store.markSuperseded(first.manifest.object);
    const old = gcs.getObject(BUCKET, `env-${prefixNo}/${first.manifest.object}`);
    const current = gcs.getObject(BUCKET, `env-${prefixNo}/${second.manifest.object}`);
    expect(Date.now() - Date.parse(old?.customTime ?? '')).toBeLessThan(10_000);
    expect(current?.customTime).toBeUndefined();
  });
});

describe('rollback', () => {
  it('is one copy of an older version manifest over the current one', async () => {
    const store = newStore();
    const v1 = await publishCatalog(store, 10, 'v1');
    const v2 = await publishCatalog(store, 11, 'v2');
    expect((await loadSnapshot(store, catalogCodec, undefined, LOAD))?.manifest.version).toBe(
      v2.manifest.version,
    );
    // What `gcloud storage cp <prefix>/catalog/<v1>.manifest.json <prefix>/catalog/manifest.json` does:
    const copy = gcs.getObject(
      BUCKET,
      `env-${prefixNo}/catalog/${v1.manifest.version}.manifest.json`,
    );
    gcs.putObject(
      BUCKET,
      `env-${prefixNo}/catalog/manifest.json`,
      copy?.data ?? '',
      'application/json',
    );
    const loaded = await loadSnapshot(store, catalogCodec, undefined, LOAD);
    expect(loaded?.manifest).toEqual(v1.manifest);
    expect(loaded?.value.find('0')?.bytes.toString()).toContain('s0v1');
  });
});
