import { BackendUnavailableError } from '../errors.js';
import type { TypedId } from '../id-types.js';
import type { RefreshingCache } from '../refreshing-cache.js';
import type { LoadedSnapshot } from '../snapshots/load-snapshot.js';
import { snapshotHealth } from '../snapshots/snapshot-health.js';
import type { MappingIndex } from './mapping-index.js';
import type { MappingAnswer, MappingHealth, MappingMatch, MappingStore } from './mapping-store.js';

/** How old a snapshot may get before health calls it stale. */
export interface SnapshotMappingOptions {
  readonly maxStalenessSecs: number;
}

/**
 * The default mapping store: the published snapshot, held in memory by a refreshing cache.
 * Lookups answer from memory; a refresh runs in the background and swaps the index in at once.
 */
export class SnapshotMappingStore implements MappingStore {
  readonly kind = 'snapshot';

  constructor(
    private readonly cache: RefreshingCache<LoadedSnapshot<MappingIndex>>,
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

  async find(requests: readonly (readonly TypedId[])[], maxLinked: number): Promise<MappingAnswer> {
    return this.findInMemory(requests, maxLinked);
  }

  findInMemory(requests: readonly (readonly TypedId[])[], maxLinked: number): MappingAnswer {
    const loaded = this.cache.peek();
    if (!loaded) throw new BackendUnavailableError('snapshot-store', 'mapping not loaded yet');
    const index = loaded.value;
    const matches: (MappingMatch | undefined)[] = [];
    for (let r = 0; r < requests.length; r++) {
      matches.push(firstMatch(index, requests[r] as readonly TypedId[], maxLinked));
    }
    return { version: loaded.manifest.version, matches };
  }

  async health(now: number): Promise<MappingHealth> {
    const detail = snapshotHealth(this.cache, now, this.options.maxStalenessSecs);
    return { ok: detail.loaded, degraded: detail.degraded, detail };
  }

  warmUp(): void {
    this.cache.warmUp();
  }

  async close(): Promise<void> {}
}

/** The first candidate the index knows, with its linked ids. */
function firstMatch(
  index: MappingIndex,
  candidates: readonly TypedId[],
  maxLinked: number,
): MappingMatch | undefined {
  for (let i = 0; i < candidates.length; i++) {
    const candidate = candidates[i] as TypedId;
    const hit = index.lookup(candidate.id, candidate.type.code, maxLinked);
    if (hit) return { candidate: i, linked: hit.linked, linkedTotal: hit.linkedTotal };
  }
  return undefined;
}
