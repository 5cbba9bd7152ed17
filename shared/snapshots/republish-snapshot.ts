import { SnapshotIntegrityError } from '../errors.js';
import { chain, digestTap } from '../streams.js';
import { type Manifest, newVersion, type SnapshotKind, tryParseManifest } from './manifest.js';
import {
  cleanup,
  cleanupSignal,
  commitManifest,
  type PublishOptions,
  type PublishResult,
  readVersionManifest,
  refuseTooLarge,
} from './publish-snapshot.js';
import type { SnapshotStore } from './snapshot-store.js';

/**
 * A rollback: makes an earlier version current again by copying its data to a NEW object under
 * a new version and publishing that, instead of pointing the manifest back at the old object.
 * The old object may already carry a customTime (it was superseded, and GCS never lets a
 * customTime move back), so pointing at it would let the retention rule delete what is served.
 * The copy is checked against the old manifest's bytes and sha256 before it is published.
 */
export async function republishSnapshot(
  store: SnapshotStore,
  kind: SnapshotKind,
  extension: string,
  version: string,
  options: Pick<PublishOptions, 'signal' | 'onNote' | 'now' | 'maxMemoryBytes'>,
): Promise<PublishResult> {
  const now = options.now ?? (() => new Date());
  const { signal } = options;
  const stored = await store.readManifest(kind, signal);
  const previous = stored ? tryParseManifest(stored.body, kind) : undefined;
  const old = await readVersionManifest(store, kind, version, signal);
  if (previous && previous.sha256 === old.sha256) {
    return { outcome: 'unchanged', manifest: previous, previous };
  }
  refuseTooLarge(old, options.maxMemoryBytes ?? 0);

  const fresh = newVersion(now());
  const object = `${kind}/${fresh}.${extension}`;
  const tap = digestTap();
  const data = chain(await store.readObject(old.object, signal), tap.stream);
  try {
    await store.writeObject(object, data, signal);
  } catch (err) {
    await cleanup(() => store.deleteObject(object, cleanupSignal()));
    throw err;
  }
  if (tap.bytes() !== old.bytes || tap.sha256() !== old.sha256) {
    await cleanup(() => store.deleteObject(object, cleanupSignal()));
    throw new SnapshotIntegrityError(
      `${old.object} does not match its manifest (bytes or sha256); ${version} was not restored`,
    );
  }
  const manifest: Manifest = {
    ...old,
    version: fresh,
    object,
    source: { ...old.source, rolledBackFrom: version, originalCreatedAt: old.createdAt },
    createdAt: now().toISOString(),
  };
  await commitManifest(store, manifest, stored?.generation, options);
  return { outcome: 'published', manifest, previous };
}
