import { mappingJobSchema } from '../shared/config.js';
import { profileSchema } from './profile/config.js';
import { catalogJobSchema } from './snapshot-catalog/config.js';
import { syncJobSchema } from './sync-mapping/config.js';
import { syncShardSchema } from './sync-mapping-shard/config.js';

/** The variables each function reads, by entry point (tests hold deploy.sh and the README to them). */
export const FUNCTION_SETTINGS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  profile: Object.keys(profileSchema.shape),
  snapshotCatalog: Object.keys(catalogJobSchema.shape),
  snapshotMapping: Object.keys(mappingJobSchema.shape),
  syncMapping: Object.keys(syncJobSchema.shape),
  syncMappingShard: Object.keys(syncShardSchema.shape),
});
