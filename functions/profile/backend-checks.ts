import type { MappingHealth } from '../../shared/mapping/mapping-store.js';

/**
 * What /health learns from calls to the backends: whether the profile store answers and, for a
 * mapping store that lives elsewhere (Bigtable), its health (undefined for the in-memory one).
 */
export interface BackendState {
  readonly store: StoreHealth;
  readonly mapping: MappingHealth | undefined;
  /** When the check ran, epoch milliseconds. */
  readonly checkedAt: number;
}

/** The profile store's part of /health. */
export interface StoreHealth {
  readonly name: string;
  readonly ok: boolean;
  readonly latencyMs: number;
  readonly error?: string;
}

/** How long a backend check answers /health before another is made. */
export const CHECK_TTL_MS = 5_000;

/**
 * The backend checks behind /health, made at most once per CHECK_TTL_MS however often /health
 * is called (each is a store ping and, with Bigtable, a table read), shared by concurrent calls;
 * and made again at once when a live request contradicts the last check (a store call failing
 * where the check found the store up, or the reverse) or the mapping's version changed since:
 * /health follows an outage, its end and a sync without delay.
 */
export class BackendChecks {
  private cached:
    | { at: number; mappingVersion: string | undefined; state: Promise<BackendState> }
    | undefined;
  /** What the cached check found, once it has: what live requests are held against. */
  private storeOk: boolean | undefined;
  private mappingOk: boolean | undefined;

  constructor(
    private readonly check: () => Promise<BackendState>,
    private readonly now: () => number,
    /** The version the mapping store answers with: a check made before it changed is stale. */
    private readonly mappingVersion: () => string | undefined = () => undefined,
  ) {}

  /** A live request's store call succeeded or failed. */
  storeAnswered(ok: boolean): void {
    if (this.storeOk !== undefined && this.storeOk !== ok) this.forget();
  }

  /** A live request's mapping lookup succeeded or failed. */
  mappingAnswered(ok: boolean): void {
    if (this.mappingOk !== undefined && this.mappingOk !== ok) this.forget();
  }

  /** The backends' state: the last check while it is fresh, else a new one. */
  current(): Promise<BackendState> {
    const now = this.now();
    const mappingVersion = this.mappingVersion();
    const cached = this.cached;
    if (cached && now - cached.at < CHECK_TTL_MS && cached.mappingVersion === mappingVersion) {
      return cached.state;
    }
    const entry = { at: now, mappingVersion, state: this.check() };
    this.cached = entry;
    entry.state.then(
      (state) => {
        if (this.cached !== entry) return;
        this.storeOk = state.store.ok;
        this.mappingOk = state.mapping?.ok;
      },
      // A check that failed outright is not kept: the next call tries again.
      () => {
        if (this.cached === entry) this.forget();
      },
    );
    return entry.state;
  }

  private forget(): void {
    this.cached = undefined;
    this.storeOk = undefined;
    this.mappingOk = undefined;
  }
}
