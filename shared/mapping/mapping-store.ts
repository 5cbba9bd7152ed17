import type { TypedId } from '../id-types.js';
import type { LinkedId } from './mapping-index.js';

/** What the mapping knows about one of the candidates of a request. */
export interface MappingMatch {
  /** Index into the candidates: the first one (registry order) the mapping knows. */
  readonly candidate: number;
  /** At most the requested number of linked ids, ordered by id, then type code. */
  readonly linked: readonly LinkedId[];
  /** How many linked ids the person has in all, before the cap. */
  readonly linkedTotal: number;
}

/** A lookup's answers (one per request, in order), with the mapping version that gave them. */
export interface MappingAnswer {
  /** The `x-mapping-version` header. */
  readonly version: string;
  readonly matches: readonly (MappingMatch | undefined)[];
}

/** The mapping's part of `/health`: free-form per kind, plus whether it can answer. */
export interface MappingHealth {
  readonly ok: boolean;
  /** Serving, but older than it should be or its last refresh failed. */
  readonly degraded: boolean;
  readonly detail: Readonly<Record<string, unknown>>;
}

/**
 * Where a request finds its linked ids: the in-memory snapshot (default) or Bigtable, for graphs
 * larger than an instance should hold. Both answer the same question the same way (same window
 * rule, same order, same totals), so the handler does not know which one runs.
 */
export interface MappingStore {
  readonly kind: 'snapshot' | 'bigtable';
  /** The version answers would carry now, or undefined until the store is ready. */
  version(): string | undefined;
  /** Resolves once the store can answer (a cold instance's first load), within `timeoutMs`. */
  ready(timeoutMs: number): Promise<void>;
  /**
   * For each request (its candidate typed ids), finds the first candidate the mapping knows,
   * with up to `maxLinked` linked ids. One request for a GET, many for a batch (Bigtable: still
   * two reads in all). Rejects with BackendUnavailableError when the store cannot answer in
   * time.
   */
  find(
    requests: readonly (readonly TypedId[])[],
    maxLinked: number,
    timeoutMs: number,
  ): Promise<MappingAnswer>;
  /**
   * `find` answered from memory, for a store that holds the mapping in the instance (snapshot
   * mode); absent where an answer needs a call (Bigtable). The one synchronous variant of the
   * ports, used in one place (functions/profile/linked-ids.ts): on the production path each
   * promise costs async-hook calls under functions-framework's per-request domain (bench part n).
   */
  findInMemory?(requests: readonly (readonly TypedId[])[], maxLinked: number): MappingAnswer;
  health(now: number): Promise<MappingHealth>;
  /** Starts the first load without waiting (module init). */
  warmUp(): void;
  close(): Promise<void>;
}
