import type { Catalog } from '../../shared/catalog/catalog.js';
import type { IdTypeRegistry } from '../../shared/id-types.js';
import type { Logger } from '../../shared/logger.js';
import type { MappingStore } from '../../shared/mapping/mapping-store.js';
import type { ProfileStore } from '../../shared/profiles/profile-store.js';
import type { RefreshingCache } from '../../shared/refreshing-cache.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import type { BackendChecks } from './backend-checks.js';
import type { ProfileConfig } from './config.js';

/** Everything the profile handler needs, injected so tests can pass fakes. */
export interface ProfileDeps {
  readonly config: ProfileConfig;
  readonly registry: IdTypeRegistry;
  readonly catalog: RefreshingCache<LoadedSnapshot<Catalog>>;
  /** Linked ids: the in-memory snapshot or Bigtable (MAPPING_STORE). */
  readonly mapping: MappingStore;
  /** The largest mapping (manifest memoryBytes) this instance loads (health shows it). */
  readonly mappingBudgetBytes: number;
  readonly store: ProfileStore;
  /** What /health knows of the backends (checked at most every few seconds). */
  readonly backends: BackendChecks;
  readonly log: Logger;
  /** Wall clock in epoch milliseconds (segment expiry, snapshot age). */
  readonly now: () => number;
}
