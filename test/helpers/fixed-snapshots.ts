import { Catalog } from '../../shared/catalog/catalog.js';
import type { Segment } from '../../shared/catalog/segment.js';
import { defaultIdTypeRegistry, type IdTypeRegistry } from '../../shared/id-types.js';
import { CompactMappingIndexBuilder } from '../../shared/mapping/compact-mapping-index.js';
import type { MappingIndex } from '../../shared/mapping/mapping-index.js';
import { RefreshingCache } from '../../shared/refreshing-cache.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import type { Manifest, SnapshotKind } from '../../shared/snapshots/manifest.js';

/** A manifest for in-memory snapshots in handler tests. */
export function fakeManifest(kind: SnapshotKind, version: string, rows: number): Manifest {
  return {
    schemaVersion: 1,
    kind,
    version,
    object: `${kind}/${version}.gz`,
    rows,
    bytes: 0,
    sha256: '0'.repeat(64),
    source: {},
    createdAt: '2026-11-26T00:00:00.000Z',
  };
}

/** A cache whose loader returns whatever `source()` says at the time (undefined = unchanged). */
export function cacheOf<V>(
  source: () => Promise<LoadedSnapshot<V> | undefined>,
  { refreshIntervalMs = 60_000, now }: { refreshIntervalMs?: number; now?: () => number } = {},
): RefreshingCache<LoadedSnapshot<V>> {
  return new RefreshingCache(source, {
    refreshIntervalMs,
    retryMinMs: 1_000,
    retryMaxMs: 60_000,
    now,
  });
}

/** A loaded catalog snapshot of the given segments. */
export function catalogSnapshot(segments: Segment[], version = '20261126T000000Z-0000000c') {
  return {
    value: new Catalog(segments),
    manifest: fakeManifest('catalog', version, segments.length),
    loadedAt: Date.now(),
  };
}

/** A loaded mapping snapshot of the given persons (each a list of [id, typeCode]). */
export function mappingSnapshot(
  persons: readonly (readonly [string, string])[][],
  version = '20261126T000000Z-0000000a',
  idTypes: IdTypeRegistry = defaultIdTypeRegistry(),
): LoadedSnapshot<MappingIndex> {
  const builder = new CompactMappingIndexBuilder(idTypes);
  for (const person of persons) builder.addPerson(person.flat());
  const value = builder.build();
  return { value, manifest: fakeManifest('mapping', version, value.idCount), loadedAt: Date.now() };
}

export const registry = defaultIdTypeRegistry();
