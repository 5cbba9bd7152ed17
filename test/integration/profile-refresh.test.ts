import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { type MappingPerson, mappingCodec } from '../../shared/mapping/mapping-codec.js';
import { GcsSnapshotStore } from '../../shared/snapshots/gcs-snapshot-store.js';
import { publishSnapshot } from '../../shared/snapshots/publish-snapshot.js';
import { GcsEmulator } from '../emulators/gcs-emulator.js';
import { eventually } from '../helpers/eventually.js';
import { writeProfilesFile } from '../helpers/profiles-file.js';
import { type ServedFunction, serveFunction } from '../helpers/serve-function.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

// A running profile function (functions-framework, production GCS adapter) follows the
// snapshots that the jobs publish, without restarting, and never serves a bad one.
const A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const B = '1234567890';
const C = '2345678901';
const mapping = mappingCodec(defaultIdTypeRegistry());

let gcs: GcsEmulator;
let publisher: GcsSnapshotStore;
let served: ServedFunction;
let base: string;
let dir: string;

function person(...ids: [string, string][]): MappingPerson {
  return ids.map(([id, typeCode]) => ({ id, typeCode }));
}

async function publishMapping(persons: MappingPerson[]) {
  const { manifest } = await publishSnapshot(publisher, mapping, Readable.from(persons), {
    source: { partition: 'test' },
    minRowsRatio: 0,
  });
  return manifest;
}

async function get(path: string) {
  const res = await fetch(`${base}${path}`);
  return {
    status: res.status,
    headers: res.headers,
    body: (await res.json()) as Record<string, unknown>,
  };
}

async function health() {
  return (await get('/health')).body as {
    status: string;
    snapshots: {
      mapping: {
        version: string;
        consecutiveFailures: number;
        lastError: string | null;
        refused: string | null;
      };
    };
  };
}

beforeAll(async () => {
  gcs = await GcsEmulator.start();
  gcs.createBucket('snaps');
  publisher = new GcsSnapshotStore(
    'gs://snaps/prod',
    { requestTimeoutMs: 2_000 },
    { apiEndpoint: gcs.baseUrl },
  );
  await publishSnapshot(publisher, catalogCodec, Readable.from([{ id: '1', name: 'one' }]), {
    source: {},
    minRowsRatio: 0,
  });
  await publishMapping([person([A, '222222'], [B, '444444'])]);
  dir = await makeTempDir();
  await writeProfilesFile(join(dir, 'profiles.ndjson.gz'), [
    { set: '222222', key: A, bins: { segments: [1] } },
    { set: '444444', key: B, bins: { segments: [1] } },
    { set: '444444', key: C, bins: { segments: [1] } },
  ]);
  Object.assign(process.env, {
    SNAPSHOT_URI: 'gs://snaps/prod',
    STORAGE_EMULATOR_HOST: gcs.baseUrl,
    EMBEDDED_PROFILES_PATH: join(dir, 'profiles.ndjson.gz'),
    REFRESH_INTERVAL_SECS: '1',
    REFRESH_RETRY_MAX_SECS: '1',
    SNAPSHOT_TIMEOUT_MS: '1000',
    // Room for the small mappings below, not for the big one.
    MAPPING_MAX_BYTES: '200000',
    LOG_LEVEL: 'ERROR',
  });
  await import('../../functions/index.js');
  served = await serveFunction('profile');
  base = served.url;
});

afterAll(async () => {
  await served.close();
  await gcs.close();
  await removeTempDir(dir);
});

describe('profile function following published snapshots', () => {
  it('serves the first version, then picks up a new one without restart', async () => {
    const first = await get(`/?id=${A}`);
    expect(first.status).toBe(200);
    expect(Object.keys(first.body).sort()).toEqual([B, A].sort());

    const v2 = await publishMapping([person([A, '222222'], [B, '444444'], [C, '444444'])]);
    await eventually(async () => {
      const res = await get(`/?id=${A}`);
      expect(res.headers.get('x-mapping-version')).toBe(v2.version);
      expect(Object.keys(res.body)).toContain(C);
    });
  });

  it.each([
    [
      'a corrupted object',
      () => gcs.inject({ corruptBody: true, match: (r) => r.path.includes('ndjson.gz') }),
    ],
    [
      'a truncated download',
      () => gcs.inject({ truncateBodyAt: 10, match: (r) => r.path.includes('ndjson.gz') }),
    ],
    [
      'GCS answering 503',
      () => gcs.inject({ status: 503, match: (r) => r.path.includes('ndjson.gz') }),
    ],
    [
      'an object whose checksum does not match its manifest',
      async () => {
        const names = gcs.listObjectNames('snaps').filter((n) => n.endsWith('.ndjson.gz'));
        gcs.putObject('snaps', names.at(-1) ?? '', gzipSync('["9999999999","444444"]\n'));
      },
    ],
  ])(
    'keeps serving the last good version over %s, and says so in health',
    async (_what, breakIt) => {
      const good = (await get(`/?id=${A}`)).headers.get('x-mapping-version');
      const bad = await publishMapping([person([A, '222222'])]);
      await breakIt();
      await eventually(async () => {
        const h = await health();
        expect(h.snapshots.mapping.consecutiveFailures).toBeGreaterThan(0);
        expect(h.status).toBe('degraded');
      });
      const res = await get(`/?id=${A}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-mapping-version')).toBe(good);
      expect(res.headers.get('x-mapping-version')).not.toBe(bad.version);

      gcs.clearFaults();
      const fixed = await publishMapping([person([A, '222222'], [B, '444444'], [C, '444444'])]);
      await eventually(async () => {
        expect((await get(`/?id=${A}`)).headers.get('x-mapping-version')).toBe(fixed.version);
        expect((await health()).status).toBe('ok');
      });
    },
  );

  it('refuses a mapping over MAPPING_MAX_BYTES without downloading it, and health says why', async () => {
    const good = (await get(`/?id=${A}`)).headers.get('x-mapping-version');
    const huge = await publishMapping(
      Array.from({ length: 20_000 }, (_, i) =>
        person([A.replace('aaaaaaaa', i.toString(16).padStart(8, '0')), '222222']),
      ),
    );
    expect(huge.memoryBytes).toBeGreaterThan(200_000);
    await eventually(async () => {
      const h = await health();
      expect(h.snapshots.mapping.lastError).toBe('SnapshotTooLargeError');
      expect(h.snapshots.mapping.refused).toMatch(
        new RegExp(`${huge.version} needs about \\d+ bytes in memory, over the budget of 200000`),
      );
      expect(h.status).toBe('degraded');
    });
    expect((await get(`/?id=${A}`)).headers.get('x-mapping-version')).toBe(good);
    const downloads = gcs.requests.filter(
      (r) => r.query.includes('alt=media') && decodeURIComponent(r.path).includes(huge.version),
    );
    expect(downloads).toEqual([]);

    const fixed = await publishMapping([person([A, '222222'], [B, '444444'])]);
    await eventually(async () => {
      expect((await get(`/?id=${A}`)).headers.get('x-mapping-version')).toBe(fixed.version);
      expect((await health()).snapshots.mapping.refused).toBeNull();
    });
  });
});
