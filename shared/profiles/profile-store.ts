import { ProfileApiError } from '../errors.js';
import type { KeyType } from '../id-types.js';

/** Where one profile lives: the set (the id type's code), the id, and how the id is keyed. */
export interface ProfileKey {
  readonly set: string;
  readonly id: string;
  /** `integer`: the record's key is the id as a 64-bit integer (a canonical decimal string here). */
  readonly keyType: KeyType;
}

/** A profile record's bins as the store returns them (segments bin plus attribute bins). */
export type ProfileBins = Readonly<Record<string, unknown>>;

/** Limits for one store call. */
export interface StoreCallOptions {
  /** The whole call, retries included, must finish within this. */
  readonly timeoutMs: number;
  /**
   * false: answer from an open connection only, never open one (`/health`: opening a connection
   * can block the instance). Default true.
   */
  readonly connect?: boolean;
}

/**
 * The store refused the request as configured (unknown namespace, security, a key it cannot
 * build...): a retry cannot help, an operator must act. Not a BackendUnavailableError.
 */
export class ProfileStoreRejectedError extends ProfileApiError {
  constructor(
    readonly backend: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The profile store: Aerospike in production, an in-memory store in the embedded default. */
export interface ProfileStore {
  /** Short name for health and logs (`embedded`, `aerospike`). */
  readonly name: string;
  /**
   * Reads all keys in one round trip; the result has one entry per key, in order, undefined
   * where there is no record. Rejects with BackendUnavailableError when the store cannot answer
   * in time, and ProfileStoreRejectedError when it refuses the request for good.
   */
  getMany(
    keys: readonly ProfileKey[],
    options: StoreCallOptions,
  ): Promise<(ProfileBins | undefined)[]>;
  /** Resolves when the store answers; throws BackendUnavailableError otherwise. */
  ping(options: StoreCallOptions): Promise<void>;
  /** What the store knows without a call (cluster view, connection), for `/health`. */
  detail?(): Readonly<Record<string, unknown>>;
  close(): Promise<void>;
}
