import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import { accessTokenAuth } from '../google-auth.js';
import { GcsSnapshotStore } from './gcs-snapshot-store.js';
import { LocalSnapshotStore } from './local-snapshot-store.js';
import type { SnapshotStore } from './snapshot-store.js';

/** The snapshot store a `SNAPSHOT_URI` names: `gs://bucket/prefix` or `file:<dir>` (local). */
export function createSnapshotStore(
  uri: string,
  requestTimeoutMs: number,
  accessToken?: string,
): SnapshotStore {
  if (uri.startsWith('gs://')) {
    return new GcsSnapshotStore(uri, { requestTimeoutMs }, accessTokenAuth(accessToken));
  }
  if (uri.startsWith('file://')) return new LocalSnapshotStore(fileURLToPath(uri));
  if (uri.startsWith('file:')) return new LocalSnapshotStore(uri.slice('file:'.length));
  throw new ConfigError(`SNAPSHOT_URI: unsupported scheme in ${uri}`);
}
