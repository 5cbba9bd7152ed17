import { join } from 'node:path';
import type { DemoDatasetOptions, DemoSamples } from '../../shared/demo/demo-dataset.js';
import { ensureDemoData } from '../../shared/demo/write-demo-data.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { serveFunction } from './serve-function.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

/** The profile function as `npm start` runs it, on generated demo data in a temporary directory. */
export interface DemoProfileServer {
  readonly url: string;
  readonly samples: DemoSamples;
  close(): Promise<void>;
}

/**
 * Generates demo data, points the environment at it (local snapshots, embedded store), loads
 * the entry module and serves `profile` through functions-framework.
 */
export async function serveDemoProfile(options: DemoDatasetOptions): Promise<DemoProfileServer> {
  const dir = await makeTempDir();
  const paths = {
    snapshotDir: join(dir, 'snapshots'),
    profilesPath: join(dir, 'profiles.ndjson.gz'),
  };
  const { samples } = await ensureDemoData(paths, defaultIdTypeRegistry(), options);
  Object.assign(process.env, {
    SNAPSHOT_URI: `file:${paths.snapshotDir}`,
    EMBEDDED_PROFILES_PATH: paths.profilesPath,
    LOG_LEVEL: 'ERROR',
  });
  await import('../../functions/index.js');
  const served = await serveFunction('profile');
  return {
    url: served.url,
    samples,
    close: async () => {
      await served.close();
      await removeTempDir(dir);
    },
  };
}
