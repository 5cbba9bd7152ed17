import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import type { Segment } from '../../shared/catalog/segment.js';
import {
  PreconditionFailedError,
  PublishRefusedError,
  SnapshotIntegrityError,
} from '../../shared/errors.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { type MappingPerson, mappingCodec } from '../../shared/mapping/mapping-codec.js';
import { loadSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';
import { parseManifest } from '../../shared/snapshots/manifest.js';
import { publishSnapshot, readVersionManifest } from '../../shared/snapshots/publish-snapshot.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const registry = defaultIdTypeRegistry();
const mapping = mappingCodec(registry);
const LOAD = { stallTimeoutMs: 5_000 };

function segments(n: number): Segment[] {
  return Array.from({ length: n }, (_, i) => ({
    id: String(i),
    name: `s${i}`,
    type: 't',
    size: i,
  }));
}

async function publishCatalog(
  store: LocalSnapshotStore,
  n: number,
  extra: { force?: boolean } = {},
) {
  return publishSnapshot(store, catalogCodec, Readable.from(segments(n)), {
    source: { collection: 'segments' },
    minRowsRatio: 0.5,
    ...extra,
  });
}

async function manifestOf(store: LocalSnapshotStore) {
  const stored = await store.readManifest('catalog');
  return stored && parseManifest(stored.body, 'catalog');
}

describe('publish then load', () => {
  it('round-trips the catalog through a versioned object and a manifest', async () => {
    const store = new LocalSnapshotStore(await tempDir());
    const result = await publishCatalog(store, 3);
    expect(result.outcome).toBe('published');
    const m = result.manifest;
    expect(m).toMatchObject({ kind: 'catalog', rows: 3, source: { collection: 'segments' } });
    expect(m.object).toBe(`catalog/${m.version}.json.gz`);
    expect(await store.listObjects('catalog/')).toEqual([
      `catalog/${m.version}.json.gz`,
      `catalog/${m.version}.manifest.json`,
      'catalog/manifest.json',
    ]);
    // The version's own manifest copy is the current manifest, for rollbacks.
    expect((await store.readManifest('catalog'))?.body).toBe(
      await readFile(
        join(store.location.slice('file:'.length), `catalog/${m.version}.manifest.json`),
        'utf8',
      ),
    );

    const loaded = await loadSnapshot(store, catalogCodec, undefined, LOAD);
    expect(loaded?.manifest).toEqual(m);
    const catalog = loaded?.value;
    expect(catalog?.find('0')?.bytes.toString()).toBe(JSON.stringify(segments(3)[0]));
    expect(catalog?.find(2)?.bytes.toString()).toBe(JSON.stringify(segments(3)[2]));
    expect(catalog?.find('9')).toBeUndefined();
    // Same version again: nothing to load.
    expect(await loadSnapshot(store, catalogCodec, loaded, LOAD)).toBeUndefined();
  });

  it('round-trips the mapping, counting ids as rows', async () => {
    const store = new LocalSnapshotStore(await tempDir());
    const persons: MappingPerson[] = [
      [
        { id: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', typeCode: '222222' },
        { id: '1234567890', typeCode: '444444' },
      ],
      [{ id: '9876543210', typeCode: '444444' }],
    ];
    const { manifest } = await publishSnapshot(store, mapping, Readable.from(persons), {
      source: { partition: '2026-11-25' },
      minRowsRatio: 0.5,
    });
    expect(manifest.rows).toBe(3);
    const loaded = await loadSnapshot(store, mapping, undefined, LOAD);
    expect(loaded?.value.lookup('1234567890', '444444', 10)).toEqual({
      typeCode: '444444',
      linked: [{ id: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', typeCode: '222222' }],
      linkedTotal: 1,
    });
    expect(loaded?.value.lookup('__proto__', '444444', 10)).toBeUndefined();
  });

  it('reports unchanged content instead of publishing a duplicate', async () => {
    const store = new LocalSnapshotStore(await tempDir());
    const first = await publishCatalog(store, 3);
    const again = await publishCatalog(store, 3);
    expect(again.outcome).toBe('unchanged');
    expect(again.manifest.version).toBe(first.manifest.version);
    expect((await store.listObjects('catalog/')).filter((n) => n.endsWith('.gz'))).toHaveLength(1);
  });
});

/** A local store that hands objects out one byte per chunk, as a network read may split them. */
class ByteByByteStore extends LocalSnapshotStore {
  override async readObject(name: string): Promise<Readable> {
    const parts: Buffer[] = [];
    for await (const chunk of await super.readObject(name)) parts.push(chunk as Buffer);
    const bytes = Buffer.concat(parts);
    return Readable.from(Array.from(bytes, (b) => Buffer.of(b)));
  }
}

describe('version manifests', () => {
  it('reads a kept manifest whose text arrives with its characters split across chunks', async () => {
    const store = new ByteByByteStore(await tempDir());
    const { manifest } = await publishSnapshot(store, catalogCodec, Readable.from(segments(3)), {
      source: { collection: 'ségments', note: '東京 ✓' },
      minRowsRatio: 0,
    });
    expect(await readVersionManifest(store, 'catalog', manifest.version)).toEqual(manifest);
  });
});

describe('publication guards', () => {
  it('refuses an empty snapshot unless forced', async () => {
    const store = new LocalSnapshotStore(await tempDir());
    await expect(publishCatalog(store, 0)).rejects.toThrow(PublishRefusedError);
    expect(await store.readManifest('catalog')).toBeUndefined();
    expect(await store.listObjects('catalog/')).toEqual([]);
    expect((await publishCatalog(store, 0, { force: true })).outcome).toBe('published');
  });

  it('refuses a snapshot that shrank below the ratio, keeping the current one', async () => {
    const store = new LocalSnapshotStore(await tempDir());
    const current = await publishCatalog(store, 10);
    await expect(publishCatalog(store, 4)).rejects.toThrow(/below 0.5 of the current 10/);
    expect((await manifestOf(store))?.version).toBe(current.manifest.version);
    expect((await store.listObjects('catalog/')).filter((n) => n.endsWith('.gz'))).toHaveLength(1);
    expect((await publishCatalog(store, 5)).outcome).toBe('published');
    expect((await publishCatalog(store, 1, { force: true })).outcome).toBe('published');
  });

  it('lets exactly one of two racing publishers win', async () => {
    const store = new LocalSnapshotStore(await tempDir());
    await publishCatalog(store, 10);
    const results = await Promise.allSettled([
      publishCatalog(store, 11),
      publishCatalog(store, 12),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(PreconditionFailedError);
    const current = await manifestOf(store);
    expect(current?.version).toBe(
      (won[0] as PromiseFulfilledResult<{ manifest: { version: string } }>).value.manifest.version,
    );
    // The loser's data object was removed: only the first and the winner's remain.
    expect((await store.listObjects('catalog/')).filter((n) => n.endsWith('.gz'))).toHaveLength(2);
  });

  it('publishes nothing when the source fails mid-stream', async () => {
    const store = new LocalSnapshotStore(await tempDir());
    const current = await publishCatalog(store, 3);
    async function* failing() {
      yield* segments(2);
      throw new Error('cursor killed');
    }
    await expect(
      publishSnapshot(store, catalogCodec, failing(), { source: {}, minRowsRatio: 0 }),
    ).rejects.toThrow('cursor killed');
    expect((await manifestOf(store))?.version).toBe(current.manifest.version);
    expect(await store.listObjects('catalog/')).toEqual([
      current.manifest.object,
      `catalog/${current.manifest.version}.manifest.json`,
      'catalog/manifest.json',
    ]);
  });
});

describe('load verification', () => {
  async function published() {
    const dir = await tempDir();
    const store = new LocalSnapshotStore(dir);
    const { manifest } = await publishCatalog(store, 50);
    return { store, manifest, objectPath: join(dir, manifest.object), dir };
  }

  it('rejects an object whose bytes differ from the manifest', async () => {
    const { store, objectPath } = await published();
    const bytes = await readFile(objectPath);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
    await writeFile(objectPath, bytes);
    await expect(loadSnapshot(store, catalogCodec, undefined, LOAD)).rejects.toThrow(
      SnapshotIntegrityError,
    );
  });

  it('rejects a truncated object', async () => {
    const { store, objectPath } = await published();
    const bytes = await readFile(objectPath);
    await writeFile(objectPath, bytes.subarray(0, bytes.length >> 1));
    await expect(loadSnapshot(store, catalogCodec, undefined, LOAD)).rejects.toThrow(
      SnapshotIntegrityError,
    );
  });

  it('rejects valid gzip whose checksum does not match', async () => {
    const { store, objectPath } = await published();
    await writeFile(objectPath, gzipSync('{"schemaVersion":1,"segments":[]}'));
    await expect(loadSnapshot(store, catalogCodec, undefined, LOAD)).rejects.toThrow(
      /sha256|bytes|rows/,
    );
  });

  it('rejects a row count that does not match the manifest', async () => {
    const { store, dir, manifest } = await published();
    const path = join(dir, 'catalog/manifest.json');
    await writeFile(path, JSON.stringify({ ...manifest, rows: 51 }));
    await expect(loadSnapshot(store, catalogCodec, undefined, LOAD)).rejects.toThrow(
      /50 rows, manifest says 51/,
    );
  });

  it('rejects a manifest that is not valid', async () => {
    const { store, dir } = await published();
    await writeFile(join(dir, 'catalog/manifest.json'), '{"kind":"catalog"}');
    await expect(loadSnapshot(store, catalogCodec, undefined, LOAD)).rejects.toThrow(
      /manifest is invalid/,
    );
  });

  it('says when nothing was published', async () => {
    const store = new LocalSnapshotStore(await tempDir());
    await expect(loadSnapshot(store, catalogCodec, undefined, LOAD)).rejects.toThrow(
      /no catalog snapshot/,
    );
  });

  it('rejects a mapping line that is not a list of id, type pairs', async () => {
    const decode = (text: string) => mapping.decode(Readable.from([Buffer.from(text)]));
    await expect(decode('["a","444444","b"]\n')).rejects.toThrow(
      /line 1: not a list of id, type pairs/,
    );
    await expect(decode('["a","444444"]\n{"a":1}\n')).rejects.toThrow(
      /line 2: not a list of id, type pairs/,
    );
    await expect(decode('not json\n')).rejects.toThrow(/line 1: not JSON/);
    await expect(decode('["a",1]\n')).rejects.toThrow(/bad id or type/);
  });

  it('skips ids of a type the registry no longer has, still counting them as rows', async () => {
    const decoded = await mapping.decode(
      Readable.from([Buffer.from('["1234567890","444444","x","999999"]\n')]),
    );
    expect(decoded.rows).toBe(2);
    expect(decoded.value.idCount).toBe(1);
    expect(decoded.value.lookup('x', '999999', 5)).toBeUndefined();
  });
});
