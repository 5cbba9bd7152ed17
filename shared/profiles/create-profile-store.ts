import type { ProfileConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { EmbeddedProfileStore } from './embedded-profile-store.js';
import type { ProfileStore } from './profile-store.js';

/** The profile store PROFILE_STORE selects. */
export function createProfileStore(config: ProfileConfig): ProfileStore {
  if (config.PROFILE_STORE === 'embedded')
    return new EmbeddedProfileStore(config.EMBEDDED_PROFILES_PATH);
  throw new ConfigError(`PROFILE_STORE: ${config.PROFILE_STORE} is not available yet`);
}
