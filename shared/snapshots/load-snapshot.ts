import { createGunzip } from 'node:zlib';
import { withDeadline } from '../deadline.js';
import {
  BackendUnavailableError,
  SnapshotIntegrityError,
  SnapshotTooLargeError,
} from '../errors.js';
import { chain, digestTap, stallGuard } from '../streams.js';
import { type Manifest, parseManifest } from './manifest.js';
import type { SnapshotCodec } from './snapshot-codec.js';
import type { SnapshotStore } from './snapshot-store.js';

/** A verified snapshot in memory, with the manifest it came from. */
export interface LoadedSnapshot<V> {
  readonly value: V;
  readonly manifest: Manifest;
  readonly loadedAt: number;
}

/** Limits for one load. */
export interface LoadOptions {
  /** Fail when the store sends nothing for this long (manifest read or object download). */
  readonly stallTimeoutMs: number;
  /**
   * Refuse, before downloading, a snapshot whose manifest says it needs more memory than this
   * (0 or unset: no limit); the decoder stops too if it outgrows it.
   */
  readonly maxMemoryBytes?: number;
  readonly now?: () => number;
}

/**
 * Memory per row assumed for manifests written before they carried `memoryBytes`: the compact
 * index's worst case for ids of up to 64 characters (hashed e-mails) stored as plain text.
 */
const FALLBACK_BYTES_PER_ROW = 80;

/**
 * Loads the current snapshot of a kind unless `current` already is that version (then
 * undefined). The data object is checked against the manifest (bytes, sha256, rows) and
 * decoded before it is returned, so a caller only ever swaps in a whole, verified value.
 */
export async function loadSnapshot<V>(
  store: SnapshotStore,
  codec: SnapshotCodec<unknown, V>,
  current: LoadedSnapshot<V> | undefined,
  options: LoadOptions,
): Promise<LoadedSnapshot<V> | undefined> {
  const { kind } = codec;
  const stored = await withTimeout(
    () => store.readManifest(kind),
    options.stallTimeoutMs,
    `reading the ${kind} manifest from ${store.location}`,
  );
  if (!stored) {
    throw new SnapshotIntegrityError(`no ${kind} snapshot has been published to ${store.location}`);
  }
  const manifest = parseManifest(stored.body, kind);
  if (current && current.manifest.version === manifest.version) return undefined;
  const maxMemoryBytes = options.maxMemoryBytes ?? 0;
  const need = manifest.memoryBytes ?? manifest.rows * FALLBACK_BYTES_PER_ROW;
  if (maxMemoryBytes > 0 && need > maxMemoryBytes) {
    // Checked before the download: every instance refreshes within an interval of a publish,
    // and an oversized mapping would take the whole fleet down at once.
    throw new SnapshotTooLargeError(
      `${kind} ${manifest.version} needs about ${need} bytes in memory, over the budget of ` +
        `${maxMemoryBytes} (MAPPING_MAX_BYTES); the current snapshot stays`,
    );
  }

  const stalled = () =>
    new BackendUnavailableError('snapshot-store', `download of ${manifest.object} stalled`);
  const raw = await withTimeout(
    () => store.readObject(manifest.object),
    options.stallTimeoutMs,
    `opening ${manifest.object}`,
  );
  let downloadError: unknown;
  raw.once('error', (err) => {
    downloadError = err;
  });
  const tap = digestTap();
  // Large output chunks: per-chunk stream overhead dominates small ones on multi-MB snapshots.
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  const text = chain(raw, stallGuard(options.stallTimeoutMs, stalled), tap.stream, gunzip);

  let decoded: Awaited<ReturnType<typeof codec.decode>>;
  try {
    decoded = await codec.decode(text, {
      rows: manifest.rows,
      memoryBytes: manifest.memoryBytes,
      maxMemoryBytes: maxMemoryBytes > 0 ? Math.ceil(maxMemoryBytes * 1.1) : 0,
    });
  } catch (err) {
    text.destroy();
    if (
      err instanceof BackendUnavailableError ||
      err instanceof SnapshotIntegrityError ||
      err instanceof SnapshotTooLargeError
    ) {
      throw err;
    }
    if (downloadError !== undefined) {
      // The store failed (HTTP error, reset, cut-off body): the object may well be fine.
      throw new BackendUnavailableError('snapshot-store', `download of ${manifest.object} failed`, {
        cause: downloadError,
      });
    }
    if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) {
      throw new SnapshotIntegrityError(`${manifest.object} is not valid gzip`, { cause: err });
    }
    throw new SnapshotIntegrityError(`${manifest.object} could not be read`, { cause: err });
  }

  const problems: string[] = [];
  if (tap.bytes() !== manifest.bytes)
    problems.push(`${tap.bytes()} bytes, manifest says ${manifest.bytes}`);
  if (tap.sha256() !== manifest.sha256) problems.push('sha256 differs from the manifest');
  if (decoded.rows !== manifest.rows)
    problems.push(`${decoded.rows} rows, manifest says ${manifest.rows}`);
  if (problems.length > 0) {
    throw new SnapshotIntegrityError(`${manifest.object} rejected: ${problems.join('; ')}`);
  }
  return { value: decoded.value, manifest, loadedAt: (options.now ?? Date.now)() };
}

/**
 * Bounds a store call by running time. No abort signal goes to the store: a signal times out in
 * wall time, so a refresh frozen with its CPU would fail on wake-up (see runningTicks).
 */
async function withTimeout<T>(call: () => Promise<T>, timeoutMs: number, what: string): Promise<T> {
  try {
    return await withDeadline(
      call(),
      timeoutMs,
      () => new BackendUnavailableError('snapshot-store', `timed out ${what}`),
    );
  } catch (err) {
    if (err instanceof BackendUnavailableError || err instanceof SnapshotIntegrityError) throw err;
    throw new BackendUnavailableError('snapshot-store', `failed ${what}`, { cause: err });
  }
}
