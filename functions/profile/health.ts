import { describeError, SnapshotTooLargeError } from '../../shared/errors.js';
import type { HttpResult } from '../../shared/http/http-event.js';
import { jsonResult } from '../../shared/http/responses.js';
import type { RefreshingCache } from '../../shared/refreshing-cache.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import type { ProfileDeps } from './profile-deps.js';

const STORE_PING_TIMEOUT_MS = 1_000;

/**
 * `GET /health`: each snapshot's version, age and refresh state, and whether the store answers.
 * 503 (`unavailable`) until both snapshots are loaded and while the store does not answer;
 * 200 `degraded` when a snapshot is older than MAX_STALENESS_SECS or its last refresh failed.
 */
export async function healthResult(deps: ProfileDeps): Promise<HttpResult> {
  const now = deps.now();
  const maxAgeSecs = deps.config.MAX_STALENESS_SECS;
  const catalog = snapshotHealth(deps.catalog, now, maxAgeSecs);
  const mapping = snapshotHealth(deps.mapping, now, maxAgeSecs);

  const t0 = performance.now();
  let storeOk = true;
  let storeError: string | undefined;
  try {
    await deps.store.ping({
      timeoutMs: Math.min(STORE_PING_TIMEOUT_MS, deps.config.REQUEST_BUDGET_MS),
    });
  } catch (err) {
    storeOk = false;
    storeError = err instanceof Error ? err.name : 'Error';
    deps.log.warn('health: profile store did not answer', { err: describeError(err) });
  }
  const store = {
    name: deps.store.name,
    ok: storeOk,
    latencyMs: round(performance.now() - t0),
    ...(storeError ? { error: storeError } : {}),
  };

  const unavailable = !catalog.loaded || !mapping.loaded || !storeOk;
  const degraded = catalog.degraded || mapping.degraded;
  const status = unavailable ? 'unavailable' : degraded ? 'degraded' : 'ok';
  const memory = process.memoryUsage();
  const body = JSON.stringify({
    status,
    snapshots: { catalog, mapping },
    store,
    memory: {
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      externalBytes: memory.external,
    },
  });
  return unavailable
    ? jsonResult(503, body, { 'retry-after': String(deps.config.RETRY_AFTER_SECS) })
    : jsonResult(200, body);
}

function snapshotHealth<V>(
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
      s.lastError === undefined ? null : s.lastError instanceof Error ? s.lastError.name : 'Error',
    // A refused snapshot says why (sizes and versions only): an operator must act on it.
    refused: s.lastError instanceof SnapshotTooLargeError ? s.lastError.message : null,
    stale,
    degraded: stale || s.consecutiveFailures > 0,
  };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
