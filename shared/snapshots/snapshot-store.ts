import type { Readable } from 'node:stream';
import type { SnapshotKind } from './manifest.js';

/** A manifest body with the generation to pass back for a compare-and-swap. */
export interface StoredManifest {
  readonly body: string;
  readonly generation: string;
}

/** One object as a listing describes it, for retention decisions. */
export interface StoredObjectInfo {
  readonly name: string;
  /** Creation time, epoch ms. */
  readonly createdAt: number;
  /** The object's customTime (epoch ms), set when it was marked superseded; GCS only. */
  readonly customTime: number | undefined;
}

/**
 * Where snapshots live: GCS in production, a local directory in the embedded default. Calls take
 * an optional signal that a store may honour: the GCS store rejects every call but readObject
 * with the signal's reason once it aborts; the local store only ends a writeObject. A call given
 * up on may still have landed (callers that care re-read); readObject's stream needs its own
 * bound (a stall guard).
 */
export interface SnapshotStore {
  /** Human-readable location, for logs and health (`gs://bucket/prefix`, `file:/dir`). */
  readonly location: string;
  /** The current manifest of a kind, or undefined when none was ever published. */
  readManifest(kind: SnapshotKind, signal?: AbortSignal): Promise<StoredManifest | undefined>;
  /**
   * Replaces the manifest only if its generation is still `expectedGeneration`
   * (undefined: only if there is none). Throws PreconditionFailedError when another writer won.
   */
  replaceManifest(
    kind: SnapshotKind,
    body: string,
    expectedGeneration: string | undefined,
    signal?: AbortSignal,
  ): Promise<void>;
  /** A stream of an object's stored bytes. */
  readObject(name: string, signal?: AbortSignal): Promise<Readable>;
  /** Creates an object from a stream; fails if it exists. Readers never see it half-written. */
  writeObject(name: string, data: Readable, signal?: AbortSignal): Promise<void>;
  /**
   * Marks an object as no longer current (GCS: its customTime, which the bucket's lifecycle
   * rule counts from), so that retention removes old versions and never the current one.
   */
  markSuperseded(name: string, signal?: AbortSignal): Promise<void>;
  /** Deletes an object; deleting a missing object is not an error. */
  deleteObject(name: string, signal?: AbortSignal): Promise<void>;
  /** Names of the objects under a prefix, in lexical order. */
  listObjects(prefix: string, signal?: AbortSignal): Promise<string[]>;
  /** The objects under a prefix with their times, in lexical order of name. */
  describeObjects(prefix: string, signal?: AbortSignal): Promise<StoredObjectInfo[]>;
}
