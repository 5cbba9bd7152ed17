import { describeError } from '../../shared/errors.js';
import type { HttpResult } from '../../shared/http/http-event.js';
import { jsonResult } from '../../shared/http/responses.js';
import { snapshotHealth } from '../../shared/snapshots/snapshot-health.js';
import type { BackendState, StoreHealth } from './backend-checks.js';
import type { ProfileDeps } from './profile-deps.js';

const STORE_PING_TIMEOUT_MS = 1_000;

/**
 * `GET /health`: `{"status": "ok" | "degraded" | "unavailable"}`, 503 (`unavailable`) until the
 * catalog and the mapping can answer and while a backend does not; `degraded` when something is
 * older than MAX_STALENESS_SECS or its refresh failed. With `detail` (an operator: see
 * healthDetailAllowed) also each snapshot's version, age and refresh state (or, with
 * MAPPING_STORE=bigtable, the table's reachability and last synced partition), the store's
 * answer and the instance's memory. Backends are asked at most every few seconds (BackendChecks).
 */
export async function healthResult(deps: ProfileDeps, detail: boolean): Promise<HttpResult> {
  const now = deps.now();
  const maxAgeSecs = deps.config.MAX_STALENESS_SECS;
  const catalog = snapshotHealth(deps.catalog, now, maxAgeSecs);
  const backends = await deps.backends.current();
  // The in-memory mapping is asked every time (no call leaves the instance), and so is one that
  // cannot answer yet (Bigtable before its first checkpoint read: its own back-off bounds the
  // reads, and /health alone must bring it round); a ready Bigtable from the backend check.
  const mapping =
    backends.mapping !== undefined && deps.mapping.version() !== undefined
      ? backends.mapping
      : await deps.mapping.health(now);
  const { store } = backends;

  const unavailable = !catalog.loaded || !mapping.ok || !store.ok;
  const degraded = catalog.degraded || mapping.degraded;
  const status = unavailable ? 'unavailable' : degraded ? 'degraded' : 'ok';
  let body: string;
  if (!detail) {
    body = JSON.stringify({ status });
  } else {
    const memory = process.memoryUsage();
    // The snapshot mapping reports beside the catalog, as before; Bigtable has its own section.
    body = JSON.stringify({
      status,
      snapshots:
        deps.mapping.kind === 'snapshot' ? { catalog, mapping: mapping.detail } : { catalog },
      ...(deps.mapping.kind === 'bigtable' ? { bigtable: mapping.detail } : {}),
      store,
      backendsCheckedAt: new Date(backends.checkedAt).toISOString(),
      memory: {
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        externalBytes: memory.external,
        mappingBudgetBytes: deps.mappingBudgetBytes,
      },
    });
  }
  return unavailable
    ? jsonResult(503, body, { 'retry-after': String(deps.config.RETRY_AFTER_SECS) })
    : jsonResult(200, body);
}

/**
 * The backend check /health caches (see BackendChecks): a store ping and, for a mapping store
 * that lives elsewhere, its health.
 */
export async function checkBackends(
  deps: Pick<ProfileDeps, 'store' | 'mapping' | 'config' | 'log' | 'now'>,
): Promise<BackendState> {
  const checkedAt = deps.now();
  const [store, mapping] = await Promise.all([
    storeHealth(deps),
    deps.mapping.kind === 'snapshot' ? undefined : deps.mapping.health(checkedAt),
  ]);
  return { store, mapping, checkedAt };
}

async function storeHealth(
  deps: Pick<ProfileDeps, 'store' | 'config' | 'log'>,
): Promise<StoreHealth> {
  const t0 = performance.now();
  try {
    await deps.store.ping({
      timeoutMs: Math.min(STORE_PING_TIMEOUT_MS, deps.config.REQUEST_BUDGET_MS),
      connect: false,
    });
    return {
      name: deps.store.name,
      ok: true,
      latencyMs: round(performance.now() - t0),
      ...deps.store.detail?.(),
    };
  } catch (err) {
    deps.log.warn('health: profile store did not answer', { err: describeError(err) });
    return {
      name: deps.store.name,
      ok: false,
      latencyMs: round(performance.now() - t0),
      error: err instanceof Error ? err.name : 'Error',
      ...deps.store.detail?.(),
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
