import { type Manifest, manifestName, type SnapshotKind, versionManifestName } from './manifest.js';
import type { SnapshotStore } from './snapshot-store.js';

/** When a sweep may mark an object, and whose clock it reads. */
export interface SweepOptions {
  /**
   * Objects younger than this are left alone: a run still uploading (at most the job's own
   * time limit) may be about to name them.
   */
  readonly graceMs: number;
  readonly now: () => number;
  readonly signal?: AbortSignal;
}

/**
 * Starts the expiry clock of objects that no manifest names: uploads of runs killed before their
 * manifest swap, versions a failed swap left behind. The bucket's one lifecycle rule deletes
 * objects a set number of days after their customTime, and only the current version (and its
 * per-version manifest) never gets one, so retention covers every object except what is served.
 * Returns the names it marked.
 */
export async function sweepOrphans(
  store: SnapshotStore,
  kind: SnapshotKind,
  current: Pick<Manifest, 'kind' | 'version' | 'object'> | undefined,
  options: SweepOptions,
): Promise<string[]> {
  const keep = new Set([manifestName(kind)]);
  if (current) keep.add(current.object).add(versionManifestName(current));
  const oldest = options.now() - options.graceMs;
  const marked: string[] = [];
  for (const object of await store.describeObjects(`${kind}/`, options.signal)) {
    if (keep.has(object.name) || object.customTime !== undefined) continue;
    if (object.createdAt > oldest) continue;
    await store.markSuperseded(object.name, options.signal);
    marked.push(object.name);
  }
  return marked;
}
