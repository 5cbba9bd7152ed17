import type { RefreshingCache } from '../refreshing-cache.js';
import type { LoadedSnapshot } from './load-snapshot.js';

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
