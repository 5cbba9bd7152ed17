import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { PreconditionFailedError, PublishRefusedError } from '../errors.js';
import { chain, digestTap } from '../streams.js';
import {
  MANIFEST_SCHEMA_VERSION,
  type Manifest,
  newVersion,
  parseManifest,
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
  /** Publish even an empty or shrunken snapshot. */
  readonly force?: boolean;
  readonly now?: () => Date;
}

/** What a publication did: a new current version, or nothing because the content is unchanged. */
export interface PublishResult {
  readonly outcome: 'published' | 'unchanged';
  readonly manifest: Manifest;
  readonly previous: Manifest | undefined;
}

/**
 * Streams records into a new immutable data object, then swaps the manifest to it with a
 * compare-and-swap on the generation read before the upload. On any failure or refusal the
 * new object is removed and the current manifest is left as it was.
 */
export async function publishSnapshot<R>(
  store: SnapshotStore,
  codec: SnapshotCodec<R, unknown>,
  records: AsyncIterable<R>,
  options: PublishOptions,
): Promise<PublishResult> {
  const now = options.now ?? (() => new Date());
  const { kind } = codec;
  const stored = await store.readManifest(kind);
  // A corrupt current manifest must not block the publication that repairs it.
  const previous = stored ? safeParse(stored.body, kind) : undefined;

  const version = newVersion(now());
  const object = `${kind}/${version}.${codec.extension}`;
  const counter = { rows: 0 };
  const tap = digestTap();
  const data = chain(Readable.from(codec.encode(records, counter)), createGzip(), tap.stream);
  await store.writeObject(object, data);

  const manifest: Manifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    kind,
    version,
    object,
    rows: counter.rows,
    bytes: tap.bytes(),
    sha256: tap.sha256(),
    source: { ...(typeof options.source === 'function' ? options.source() : options.source) },
    createdAt: now().toISOString(),
  };

  try {
    if (previous && previous.sha256 === manifest.sha256) {
      await store.deleteObject(object);
      return { outcome: 'unchanged', manifest: previous, previous };
    }
    refuseUnsafe(manifest, previous, options);
    const body = `${JSON.stringify(manifest, null, 2)}\n`;
    // A copy per version, so that a rollback is one copy of a manifest that was once current.
    await store.writeObject(versionManifestName(manifest), Readable.from([body]));
    await store.replaceManifest(kind, body, stored?.generation);
  } catch (err) {
    await store.deleteObject(object).catch(() => undefined);
    await store.deleteObject(versionManifestName(manifest)).catch(() => undefined);
    if (err instanceof PreconditionFailedError) {
      throw new PreconditionFailedError(
        `another publisher replaced the ${kind} manifest first; ${version} was not published`,
        { cause: err },
      );
    }
    throw err;
  }
  return { outcome: 'published', manifest, previous };
}

function refuseUnsafe(next: Manifest, previous: Manifest | undefined, options: PublishOptions) {
  if (options.force) return;
  if (next.rows === 0) {
    throw new PublishRefusedError(`refusing to publish an empty ${next.kind} snapshot`);
  }
  if (previous && next.rows < previous.rows * options.minRowsRatio) {
    throw new PublishRefusedError(
      `refusing to publish ${next.kind} with ${next.rows} rows: below ${options.minRowsRatio} of ` +
        `the current ${previous.rows} (${previous.version}); set force to override`,
    );
  }
}

function safeParse(body: string, kind: Manifest['kind']): Manifest | undefined {
  try {
    return parseManifest(body, kind);
  } catch {
    return undefined;
  }
}
