import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { SnapshotIntegrityError } from '../errors.js';

/** The two snapshots the scheduled functions publish and the profile function reads. */
export const SNAPSHOT_KINDS = ['catalog', 'mapping'] as const;
export type SnapshotKind = (typeof SNAPSHOT_KINDS)[number];

/** Current manifest schema; bump when a reader could misread a newer manifest. */
export const MANIFEST_SCHEMA_VERSION = 1;

const VERSION_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

/** The small JSON document that names the current data object of one snapshot kind. */
export const manifestSchema = z.object({
  schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
  kind: z.enum(SNAPSHOT_KINDS),
  version: z.string().regex(VERSION_PATTERN),
  object: z.string().min(1),
  rows: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /**
   * Estimated bytes an instance holds once the snapshot is loaded (mapping only). Optional, so
   * that manifests written before it existed still parse; readers then estimate from rows.
   */
  memoryBytes: z.number().int().nonnegative().optional(),
  source: z.record(z.string(), z.string()),
  createdAt: z.iso.datetime(),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** Object name of the manifest for a kind, relative to the store's root. */
export function manifestName(kind: SnapshotKind): string {
  return `${kind}/manifest.json`;
}

/** Where the manifest of one version is kept once published (for rollbacks). */
export function versionManifestName(manifest: Pick<Manifest, 'kind' | 'version'>): string {
  return `${manifest.kind}/${manifest.version}.manifest.json`;
}

/**
 * A new version name: UTC time to the second plus 8 random hex digits.
 * The content hash is not known until the stream ends, so it goes in the manifest instead.
 */
export function newVersion(now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

/** Parses and validates a manifest body; anything else is a SnapshotIntegrityError. */
export function parseManifest(body: string, kind: SnapshotKind): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    throw new SnapshotIntegrityError(`${kind} manifest is not JSON`, { cause: err });
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new SnapshotIntegrityError(
      `${kind} manifest is invalid: ${z.prettifyError(parsed.error)}`,
    );
  }
  if (parsed.data.kind !== kind) {
    throw new SnapshotIntegrityError(`${kind} manifest names kind ${parsed.data.kind}`);
  }
  if (!parsed.data.object.startsWith(`${kind}/`)) {
    throw new SnapshotIntegrityError(`${kind} manifest points outside its folder`);
  }
  return parsed.data;
}

/** A manifest body parsed, or undefined when it is not a valid one (e.g. a corrupt current one). */
export function tryParseManifest(body: string, kind: SnapshotKind): Manifest | undefined {
  try {
    return parseManifest(body, kind);
  } catch {
    return undefined;
  }
}
