import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import {
  PreconditionFailedError,
  PublishRefusedError,
  SnapshotIntegrityError,
  UnknownVersionError,
} from '../errors.js';
import { chain, digestTap } from '../streams.js';
import { readAllText } from '../text-lines.js';
import {
  MANIFEST_SCHEMA_VERSION,
  type Manifest,
  newVersion,
  parseManifest,
  tryParseManifest,
  versionManifestName,
} from './manifest.js';
import type { SnapshotCodec } from './snapshot-codec.js';
import type { SnapshotStore } from './snapshot-store.js';

/** Guards and labels for one publication. */
export interface PublishOptions {
  /**
   * Where the rows came from (collection, partition date...), recorded in the manifest. A
   * function is called once the data is written, for sources only known from the rows.
   */
  readonly source: Readonly<Record<string, string>> | (() => Readonly<Record<string, string>>);
  /** Refuse when the new row count is below this fraction of the current one (0 disables). */
  readonly minRowsRatio: number;
  /** Refuse a snapshot whose estimated in-memory size (manifest `memoryBytes`) is over this; 0: no limit. */
  readonly maxMemoryBytes?: number;
  /** Publish even an empty or shrunken snapshot (never one over the memory budget). */
  readonly force?: boolean;
  /** Ends every store call of the publication (the job's deadline). */
  readonly signal?: AbortSignal;
  /** Told when a failed manifest write turned out to have landed, or left objects behind. */
  readonly onNote?: (message: string, detail: Record<string, unknown>) => void;
  readonly now?: () => Date;
}

/** What a publication did: a new current version, or nothing because the content is unchanged. */
export interface PublishResult {
  readonly outcome: 'published' | 'unchanged';
  readonly manifest: Manifest;
  readonly previous: Manifest | undefined;
}

/** How long cleanup after a failure may take, even past the job's own deadline. */
const CLEANUP_TIMEOUT_MS = 10_000;

/**
 * Streams records into a new immutable data object, then swaps the manifest to it with a
 * compare-and-swap on the generation read before the upload. On a refusal or a failure the
 * current manifest is left as it was; the new object is deleted only when it is provably not
 * what the manifest names (see commitManifest).
 */
export async function publishSnapshot<R>(
  store: SnapshotStore,
  codec: SnapshotCodec<R, unknown>,
  records: AsyncIterable<R>,
  options: PublishOptions,
): Promise<PublishResult> {
  const now = options.now ?? (() => new Date());
  const { kind } = codec;
  const { signal } = options;
  const stored = await store.readManifest(kind, signal);
  // A corrupt current manifest must not block the publication that repairs it.
  const previous = stored ? tryParseManifest(stored.body, kind) : undefined;

  const version = newVersion(now());
  const object = `${kind}/${version}.${codec.extension}`;
  const counter = { rows: 0, memoryBytes: undefined as number | undefined };
  const tap = digestTap();
  const data = chain(Readable.from(codec.encode(records, counter)), createGzip(), tap.stream);
  try {
    await store.writeObject(object, data, signal);
  } catch (err) {
    // Nothing names the object yet, whatever became of the upload: safe to remove.
    await cleanup(() => store.deleteObject(object, cleanupSignal()));
    throw err;
  }

  const manifest: Manifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    kind,
    version,
    object,
    rows: counter.rows,
    bytes: tap.bytes(),
    sha256: tap.sha256(),
    ...(counter.memoryBytes === undefined ? {} : { memoryBytes: counter.memoryBytes }),
    source: { ...(typeof options.source === 'function' ? options.source() : options.source) },
    createdAt: now().toISOString(),
  };

  if (previous && previous.sha256 === manifest.sha256) {
    await cleanup(() => store.deleteObject(object, cleanupSignal()));
    return { outcome: 'unchanged', manifest: previous, previous };
  }
  try {
    refuseUnsafe(manifest, previous, options);
  } catch (err) {
    await cleanup(() => store.deleteObject(object, cleanupSignal()));
    throw err;
  }
  await commitManifest(store, manifest, stored?.generation, options);
  return { outcome: 'published', manifest, previous };
}

/**
 * Makes `manifest` current: writes its per-version copy, then swaps `<kind>/manifest.json` with a
 * compare-and-swap. A write whose caller timed out or whose connection reset may still have
 * committed, so after any failure the manifest is read again: if it names this version, the
 * publication happened; if it names another, this version's objects are deleted; if it cannot be
 * read, they are left (the next run's orphan sweep marks them for expiry) and the error stands.
 */
export async function commitManifest(
  store: SnapshotStore,
  manifest: Manifest,
  expectedGeneration: string | undefined,
  options: Pick<PublishOptions, 'signal' | 'onNote'>,
): Promise<void> {
  const { kind, version, object } = manifest;
  const body = `${JSON.stringify(manifest, null, 2)}\n`;
  const copy = versionManifestName(manifest);
  const dropOurs = () =>
    cleanup(async () => {
      await store.deleteObject(object, cleanupSignal());
      await store.deleteObject(copy, cleanupSignal());
    });
  try {
    // A copy per version, so that a rollback can find what was once current.
    await store.writeObject(copy, Readable.from([body]), options.signal);
  } catch (err) {
    await dropOurs(); // the swap was never attempted: nothing names them
    throw err;
  }
  try {
    await store.replaceManifest(kind, body, expectedGeneration, options.signal);
  } catch (err) {
    const current = await store.readManifest(kind, cleanupSignal()).then(
      (read) => (read ? tryParseManifest(read.body, kind) : undefined),
      () => null, // unknown: the store did not answer
    );
    if (current?.version === version) {
      options.onNote?.(`${kind} manifest write reported an error but had landed`, {
        version,
        error: err instanceof Error ? err.name : String(err),
      });
      return;
    }
    if (current === null) {
      options.onNote?.(`${kind} manifest state unknown after a failed write; ${version} kept`, {
        version,
        object,
      });
    } else {
      await dropOurs();
    }
    if (err instanceof PreconditionFailedError) {
      throw new PreconditionFailedError(
        `another publisher replaced the ${kind} manifest first; ${version} was not published`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** Reads the manifest an earlier version kept next to its data (for rollbacks). */
export async function readVersionManifest(
  store: SnapshotStore,
  kind: Manifest['kind'],
  version: string,
  signal?: AbortSignal,
): Promise<Manifest> {
  const name = versionManifestName({ kind, version });
  let body: string;
  try {
    body = await readAllText(await store.readObject(name, signal));
  } catch (err) {
    if (err instanceof SnapshotIntegrityError || (err as { code?: unknown }).code === 404) {
      throw new UnknownVersionError(`no ${kind} version ${version} is kept (${name})`, {
        cause: err,
      });
    }
    throw err;
  }
  const manifest = parseManifest(body, kind);
  if (manifest.version !== version) {
    throw new SnapshotIntegrityError(`${name} describes version ${manifest.version}`);
  }
  return manifest;
}

function refuseUnsafe(next: Manifest, previous: Manifest | undefined, options: PublishOptions) {
  refuseTooLarge(next, options.maxMemoryBytes ?? 0);
  if (options.force) return;
  if (next.rows === 0) {
    throw new PublishRefusedError(`refusing to publish an empty ${next.kind} snapshot`, next);
  }
  if (previous && next.rows < previous.rows * options.minRowsRatio) {
    throw new PublishRefusedError(
      `refusing to publish ${next.kind} with ${next.rows} rows: below ${options.minRowsRatio} of ` +
        `the current ${previous.rows} (${previous.version}); set force to override`,
      next,
    );
  }
}

/** Refuses a snapshot that instances could not hold in memory (even when forced). */
export function refuseTooLarge(manifest: Manifest, maxMemoryBytes: number): void {
  const need = manifest.memoryBytes;
  if (maxMemoryBytes > 0 && need !== undefined && need > maxMemoryBytes) {
    throw new PublishRefusedError(
      `refusing to publish ${manifest.kind} with ${manifest.rows} rows: it needs about ${need} ` +
        `bytes in memory, over MAPPING_MAX_BYTES (${maxMemoryBytes}); give the profile function ` +
        'more memory (deploy.sh MAPPING_IDS) or use MAPPING_STORE=bigtable',
      manifest,
    );
  }
}

/** Runs cleanup after a failure; its own failure must not hide the one being reported. */
export async function cleanup(work: () => Promise<void>): Promise<void> {
  await work().catch(() => undefined);
}

/** A signal for cleanup store calls, which may run past the job's own deadline. */
export function cleanupSignal(): AbortSignal {
  return AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
}
