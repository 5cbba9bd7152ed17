import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import type { EmbeddedProfileRecord } from '../../shared/profiles/embedded-profile-store.js';

/** Writes an embedded profile store file (gzip NDJSON of `{set, key, bins}`). */
export async function writeProfilesFile(
  path: string,
  records: EmbeddedProfileRecord[],
): Promise<void> {
  await writeFile(path, gzipSync(records.map((r) => `${JSON.stringify(r)}\n`).join('')));
}
