import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { get as httpGet } from 'node:http';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import { BackendUnavailableError } from '../../shared/errors.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { type MappingPerson, mappingCodec } from '../../shared/mapping/mapping-codec.js';
import { GcsSnapshotStore } from '../../shared/snapshots/gcs-snapshot-store.js';
import { loadSnapshot } from '../../shared/snapshots/load-snapshot.js';
import type { Manifest } from '../../shared/snapshots/manifest.js';
import { publishSnapshot } from '../../shared/snapshots/publish-snapshot.js';
import type { SnapshotStore } from '../../shared/snapshots/snapshot-store.js';
import { GcsEmulator } from '../emulators/gcs-emulator.js';

// Cloud Run throttles CPU outside requests, so a background refresh is frozen mid-download and
// thawed by the next request. The bytes keep arriving meanwhile (here: from another thread).
// A download that makes progress must not be reported as stalled because the process was
// frozen; one that really stops must still fail.
const codec = mappingCodec(defaultIdTypeRegistry());
const STALL_MS = 600;
const workers: Worker[] = [];

afterEach(async () => {
  for (const worker of workers.splice(0)) {
    worker.postMessage('close');
    await once(worker, 'exit');
  }
});

/** A mapping snapshot of `persons` persons: the gzip bytes and a manifest that matches them. */
async function snapshot(persons: number): Promise<{ body: Buffer; manifest: Manifest }> {
  const list: MappingPerson[] = Array.from({ length: persons }, (_, i) => [
    { id: String(1_000_000_000 + i), typeCode: '444444' },
    { id: `${i.toString(16).padStart(8, '0')}-aaaa-4aaa-8aaa-aaaaaaaaaaaa`, typeCode: '222222' },
  ]);
  let text = '';
  const counter = { rows: 0 };
  for await (const chunk of codec.encode(list, counter)) text += chunk;
  const body = gzipSync(text, { level: 0 }); // stored, not compressed: many bytes to trickle
  const manifest: Manifest = {
    schemaVersion: 1,
    kind: 'mapping',
    version: '20261130T000000Z-0000000a',
    object: 'mapping/20261130T000000Z-0000000a.ndjson.gz',
    rows: counter.rows,
    bytes: body.length,
    sha256: createHash('sha256').update(body).digest('hex'),
    source: {},
    createdAt: new Date().toISOString(),
  };
  return { body, manifest };
}

/** A store whose one object comes from a trickle server running in a worker thread. */
async function trickleStore(
  manifest: Manifest,
  body: Buffer,
  pace: { pieceBytes: number; everyMs: number; stopAfter?: number },
): Promise<SnapshotStore> {
  const worker = new Worker(new URL('../helpers/trickle-server.ts', import.meta.url), {
    workerData: { body, ...pace },
  });
  workers.push(worker);
  const [port] = (await once(worker, 'message')) as [number];
  const unused = () => Promise.reject(new Error('not used'));
  return {
    location: 'trickle:',
    readManifest: async () => ({ body: JSON.stringify(manifest), generation: '1' }),
    readObject: () =>
      new Promise<Readable>((resolve, reject) => {
        httpGet(`http://127.0.0.1:${port}/`, resolve).on('error', reject);
      }),
    replaceManifest: unused,
    writeObject: unused,
    markSuperseded: unused,
    deleteObject: unused,
    listObjects: unused,
    describeObjects: unused,
  };
}

/** Freezes this thread (timers and I/O alike), as a throttled Cloud Run instance is frozen. */
function freeze(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('a snapshot download on a CPU-throttled instance', () => {
  it('is not a stall while bytes keep coming, however long the process was frozen', async () => {
    const { body, manifest } = await snapshot(20_000);
    // About 2.5 s of trickling; the main thread is frozen for 3 x STALL_MS twice meanwhile.
    const store = await trickleStore(manifest, body, {
      pieceBytes: Math.ceil(body.length / 50),
      everyMs: 50,
    });
    const loading = loadSnapshot(store, codec, undefined, { stallTimeoutMs: STALL_MS });
    for (const at of [400, 1_200]) {
      setTimeout(() => freeze(3 * STALL_MS), at);
    }
    const loaded = await loading;
    expect(loaded?.manifest.version).toBe(manifest.version);
    expect(loaded?.value.idCount).toBe(40_000);
  });

  it('still fails, within its stall timeout of running time, when the bytes stop', async () => {
    const { body, manifest } = await snapshot(20_000);
    const store = await trickleStore(manifest, body, {
      pieceBytes: 64 * 1024,
      everyMs: 20,
      stopAfter: 256 * 1024,
    });
    const started = performance.now();
    const err = await loadSnapshot(store, codec, undefined, { stallTimeoutMs: STALL_MS }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toMatch(/stalled/);
    expect(performance.now() - started).toBeLessThan(STALL_MS * 10);
  });

  it('reads the manifest from GCS, however long the process was frozen during the request', async () => {
    const gcs = await GcsEmulator.start();
    try {
      gcs.createBucket('snapshots');
      const store = new GcsSnapshotStore(
        'gs://snapshots/env',
        { requestTimeoutMs: 2_000 },
        { apiEndpoint: gcs.baseUrl, projectId: 'test' },
      );
      const { manifest } = await publishSnapshot(
        store,
        catalogCodec,
        Readable.from([{ id: '1', name: 's1' }]),
        { source: {}, minRowsRatio: 0 },
      );
      // The manifest's metadata request is answered late; meanwhile the process is frozen for
      // longer than the stall timeout (in wall time).
      gcs.inject({
        match: ({ method, path, query }) =>
          method === 'GET' && path.endsWith('manifest.json') && query.get('alt') !== 'media',
        delayMs: 100,
        times: 1,
      });
      const loading = loadSnapshot(store, catalogCodec, undefined, { stallTimeoutMs: STALL_MS });
      setTimeout(() => freeze(3 * STALL_MS), 20);
      const loaded = await loading;
      expect(loaded?.manifest.version).toBe(manifest.version);
      expect(loaded?.value.size).toBe(1);
    } finally {
      await gcs.close();
    }
  });
});
