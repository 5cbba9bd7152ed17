import { BackendUnavailableError } from '../errors.js';
import type { TypedId } from '../id-types.js';
import type { RefreshingCache } from '../refreshing-cache.js';
import type { LoadedSnapshot } from '../snapshots/load-snapshot.js';
import type { MappingIndex } from './mapping-index.js';
import type { MappingAnswer, MappingHealth, MappingMatch, MappingStore } from './mapping-store.js';

/** How old a snapshot may get before health calls it stale. */
export interface SnapshotMappingOptions {
  readonly maxStalenessSecs: number;
}

/**
 * The default mapping store: the published snapshot, held in memory by a refreshing cache.
 * Lookups are synchronous; a refresh runs in the background and swaps the index in at once.
 */
export class SnapshotMappingStore implements MappingStore {
  readonly kind = 'snapshot';

  constructor(
    readonly cache: RefreshingCache<LoadedSnapshot<MappingIndex>>,
    private readonly options: SnapshotMappingOptions,
  ) {}

  version(): string | undefined {
    return this.cache.peek()?.manifest.version;
  }

  async ready(timeoutMs: number): Promise<void> {
    await this.cache.getWithin(
      timeoutMs,
      () => new BackendUnavailableError('snapshot-store', 'first snapshot load timed out'),
    );
  }

  find(requests: readonly (readonly TypedId[])[], maxLinked: number): MappingAnswer {
    const loaded = this.cache.peek();
    if (!loaded) throw new BackendUnavailableError('snapshot-store', 'mapping not loaded yet');
    const index = loaded.value;
    const matches = requests.map((candidates): MappingMatch | undefined => {
      for (let i = 0; i < candidates.length; i++) {
        const candidate = candidates[i] as TypedId;
        const hit = index.lookup(candidate.id, candidate.type.code, maxLinked);
        if (hit) return { candidate: i, linked: hit.linked, linkedTotal: hit.linkedTotal };
      }
      return undefined;
    });
    return { version: loaded.manifest.version, matches };
  }

  health(now: number): MappingHealth {
    const detail = snapshotHealth(this.cache, now, this.options.maxStalenessSecs);
    return { ok: detail.loaded, degraded: detail.degraded, detail };
  }

  warmUp(): void {
    this.cache.warmUp();
  }

  async close(): Promise<void> {}
}

/** What health reports about one snapshot cache. */
export function snapshotHealth<V>(
  cache: RefreshingCache<LoadedSnapshot<V>>,
  now: number,
  maxAgeSecs: number,
) {
  if (cache.peek() === undefined) cache.warmUp();
  const s = cache.status();
  const manifest = s.value?.manifest;
  const ageSecs = manifest
    ? Math.max(0, Math.round((now - Date.parse(manifest.createdAt)) / 1000))
    : undefined;
  const stale = ageSecs !== undefined && ageSecs > maxAgeSecs;
  const lastError = s.lastError;
  return {
    loaded: s.value !== undefined,
    version: manifest?.version ?? null,
    createdAt: manifest?.createdAt ?? null,
    ageSecs: ageSecs ?? null,
    rows: manifest?.rows ?? null,
    source: manifest?.source ?? null,
    loadedAt: s.value ? new Date(s.value.loadedAt).toISOString() : null,
    lastCheckAt: s.lastAttemptAt === undefined ? null : new Date(s.lastAttemptAt).toISOString(),
    consecutiveFailures: s.consecutiveFailures,
    // The error's name only: messages can carry bucket paths and driver details.
    lastError:
      lastError === undefined ? null : lastError instanceof Error ? lastError.name : 'Error',
    // A refused snapshot says why (sizes and versions only): an operator must act on it.
    refused:
      lastError instanceof Error && lastError.name === 'SnapshotTooLargeError'
        ? lastError.message
        : null,
    stale,
    degraded: stale || s.consecutiveFailures > 0,
  };
}
