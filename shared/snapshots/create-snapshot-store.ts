import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import { LocalSnapshotStore } from './local-snapshot-store.js';
import type { SnapshotStore } from './snapshot-store.js';

/** The snapshot store a `SNAPSHOT_URI` names: `file:<dir>` (local) or `gs://bucket/prefix`. */
export function createSnapshotStore(uri: string): SnapshotStore {
  if (uri.startsWith('file://')) return new LocalSnapshotStore(fileURLToPath(uri));
  if (uri.startsWith('file:')) return new LocalSnapshotStore(uri.slice('file:'.length));
  throw new ConfigError(`SNAPSHOT_URI: unsupported scheme in ${uri}`);
}
