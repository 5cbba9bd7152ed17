import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import { bigtableTableOptions } from '../../shared/config.js';
import { describeError } from '../../shared/errors.js';
import type { HttpHandler } from '../../shared/http/http-event.js';
import { createLogger, type Logger } from '../../shared/logger.js';
import { BigtableMappingStore } from '../../shared/mapping/bigtable-mapping-store.js';
import { mappingCodec } from '../../shared/mapping/mapping-codec.js';
import type { MappingIndex } from '../../shared/mapping/mapping-index.js';
import type { MappingStore } from '../../shared/mapping/mapping-store.js';
import { SnapshotMappingStore } from '../../shared/mapping/snapshot-mapping-store.js';
import { instanceMemoryLimit, mappingBudgetFor } from '../../shared/memory-budget.js';
import { createProfileStore } from '../../shared/profiles/create-profile-store.js';
import { RefreshingCache } from '../../shared/refreshing-cache.js';
import { createSnapshotStore } from '../../shared/snapshots/create-snapshot-store.js';
import { type LoadedSnapshot, loadSnapshot } from '../../shared/snapshots/load-snapshot.js';
import type { Manifest } from '../../shared/snapshots/manifest.js';
import type { SnapshotCodec } from '../../shared/snapshots/snapshot-codec.js';
import type { SnapshotStore } from '../../shared/snapshots/snapshot-store.js';
import { BackendChecks } from './backend-checks.js';
import { loadProfileConfig, type ProfileConfig } from './config.js';
import { createProfileHandler } from './handler.js';
import { checkBackends } from './health.js';
import type { ProfileDeps } from './profile-deps.js';

/** A wired profile function: its handler and the dependencies behind it. */
export interface ProfileRuntime {
  readonly handler: HttpHandler;
  readonly deps: ProfileDeps;
  /** Starts both first snapshot loads and the store's first contact, without waiting. */
  warmUp(): void;
}

/** Wires the profile function from configuration: snapshot caches, profile store, handler. */
export function createProfileRuntime(config: ProfileConfig, log: Logger): ProfileRuntime {
  const snapshots = createSnapshotStore(
    config.SNAPSHOT_URI,
    config.SNAPSHOT_TIMEOUT_MS,
    config.GOOGLE_OAUTH_ACCESS_TOKEN,
  );
  const catalog = snapshotCache(snapshots, catalogCodec, config, log, 0);
  const mappingBudgetBytes = config.MAPPING_MAX_BYTES ?? mappingBudgetFor(instanceMemoryLimit());
  const mapping: MappingStore =
    config.MAPPING_STORE === 'bigtable'
      ? new BigtableMappingStore({
          ...bigtableTableOptions(config),
          windowDays: config.MAPPING_WINDOW_DAYS,
          refreshIntervalMs: config.REFRESH_INTERVAL_SECS * 1000,
          retryMaxMs: config.REFRESH_RETRY_MAX_SECS * 1000,
          maxStalenessSecs: config.MAX_STALENESS_SECS,
        })
      : new SnapshotMappingStore(
          snapshotCache<MappingIndex>(
            snapshots,
            mappingCodec(config.ID_TYPES_JSON),
            config,
            log,
            mappingBudgetBytes,
          ),
          { maxStalenessSecs: config.MAX_STALENESS_SECS },
        );
  const store = createProfileStore(config, log);
  const now = Date.now;
  const deps: ProfileDeps = {
    config,
    registry: config.ID_TYPES_JSON,
    catalog,
    mapping,
    mappingBudgetBytes,
    store,
    backends: new BackendChecks(
      () => checkBackends({ store, mapping, config, log, now }),
      now,
      () => mapping.version(),
    ),
    log,
    now,
  };
  return {
    handler: createProfileHandler(deps),
    deps,
    warmUp: () => {
      catalog.warmUp();
      mapping.warmUp();
      store.ping({ timeoutMs: config.FIRST_LOAD_TIMEOUT_MS }).catch((err: unknown) => {
        log.warn('profile store did not answer at start-up', { err });
      });
    },
  };
}

function snapshotCache<V>(
  store: SnapshotStore,
  codec: SnapshotCodec<never, V>,
  config: ProfileConfig,
  log: Logger,
  maxMemoryBytes: number,
): RefreshingCache<LoadedSnapshot<V>> {
  const kind = codec.kind;
  return new RefreshingCache<LoadedSnapshot<V>>(
    async (current) => {
      let served = current;
      try {
        const loaded = await loadSnapshot(store, codec, current, {
          stallTimeoutMs: config.SNAPSHOT_TIMEOUT_MS,
          maxMemoryBytes,
        });
        served = loaded ?? current;
        return loaded;
      } finally {
        if (served) logServed(log, kind, served.manifest, config.MAX_STALENESS_SECS);
      }
    },
    {
      refreshIntervalMs: config.REFRESH_INTERVAL_SECS * 1000,
      retryMinMs: Math.min(1_000, config.REFRESH_RETRY_MAX_SECS * 1000),
      retryMaxMs: config.REFRESH_RETRY_MAX_SECS * 1000,
      onError: (err, failures) =>
        log.error(`${codec.kind} snapshot load failed`, {
          snapshot: kind,
          err,
          failures,
          location: store.location,
          detail: describeError(err),
        }),
      onSwap: (loaded) => {
        const { manifest } = loaded as LoadedSnapshot<V>;
        log.info(`${codec.kind} snapshot ${manifest.version} loaded`, {
          version: manifest.version,
          rows: manifest.rows,
          bytes: manifest.bytes,
        });
      },
    },
  );
}

/**
 * After every check for a newer snapshot (at most every REFRESH_INTERVAL_SECS per instance, while
 * requests come), the version this instance serves and its age: the dashboard's snapshot ages
 * and the stale-snapshot alert read these lines (deploy.sh's log-based metrics). WARNING once it
 * is older than MAX_STALENESS_SECS (what /health calls stale).
 */
function logServed(log: Logger, kind: string, manifest: Manifest, maxStalenessSecs: number): void {
  const ageSecs = Math.max(0, Math.round((Date.now() - Date.parse(manifest.createdAt)) / 1000));
  const stale = ageSecs > maxStalenessSecs;
  const fields = { snapshot: kind, version: manifest.version, ageSecs, stale };
  const message = `${kind} snapshot ${manifest.version} served, ${ageSecs} s old`;
  if (stale) log.warn(`${message}: older than MAX_STALENESS_SECS=${maxStalenessSecs}`, fields);
  else log.info(message, fields);
}

let runtime: ProfileRuntime | undefined;

/** The module-scope runtime of this instance, built from process.env on first use. */
export function profileRuntime(): ProfileRuntime {
  if (!runtime) {
    const config = loadProfileConfig(process.env);
    runtime = createProfileRuntime(config, createLogger({ minSeverity: config.LOG_LEVEL }));
  }
  return runtime;
}
