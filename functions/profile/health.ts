import { describeError } from '../../shared/errors.js';
import type { HttpResult } from '../../shared/http/http-event.js';
import { jsonResult } from '../../shared/http/responses.js';
import { snapshotHealth } from '../../shared/snapshots/snapshot-health.js';
import type { ProfileDeps } from './profile-deps.js';

const STORE_PING_TIMEOUT_MS = 1_000;

/**
 * `GET /health`: each snapshot's version, age and refresh state (or, with MAPPING_STORE=bigtable,
 * the table's reachability and last synced partition), and whether the profile store answers.
 * 503 (`unavailable`) until the catalog and the mapping can answer and while the store does
 * not; 200 `degraded` when something is older than MAX_STALENESS_SECS or its refresh failed.
 */
export async function healthResult(deps: ProfileDeps): Promise<HttpResult> {
  const now = deps.now();
  const maxAgeSecs = deps.config.MAX_STALENESS_SECS;
  const catalog = snapshotHealth(deps.catalog, now, maxAgeSecs);
  const [mapping, store] = await Promise.all([deps.mapping.health(now), storeHealth(deps)]);

  const unavailable = !catalog.loaded || !mapping.ok || !store.ok;
  const degraded = catalog.degraded || mapping.degraded;
  const status = unavailable ? 'unavailable' : degraded ? 'degraded' : 'ok';
  const memory = process.memoryUsage();
  // The snapshot mapping reports beside the catalog, as before; Bigtable has its own section.
  const body = JSON.stringify({
    status,
    snapshots:
      deps.mapping.kind === 'snapshot' ? { catalog, mapping: mapping.detail } : { catalog },
    ...(deps.mapping.kind === 'bigtable' ? { bigtable: mapping.detail } : {}),
    store,
    memory: {
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      externalBytes: memory.external,
      mappingBudgetBytes: deps.mappingBudgetBytes,
    },
  });
  return unavailable
    ? jsonResult(503, body, { 'retry-after': String(deps.config.RETRY_AFTER_SECS) })
    : jsonResult(200, body);
}

async function storeHealth(deps: ProfileDeps) {
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
