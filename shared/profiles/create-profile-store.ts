import type { ProfileConfig } from '../config.js';
import { AerospikeProfileStore, parseAerospikeHosts } from './aerospike-profile-store.js';
import { EmbeddedProfileStore } from './embedded-profile-store.js';
import type { ProfileStore } from './profile-store.js';

/** The profile store PROFILE_STORE selects. */
export function createProfileStore(config: ProfileConfig): ProfileStore {
  if (config.PROFILE_STORE === 'embedded')
    return new EmbeddedProfileStore(config.EMBEDDED_PROFILES_PATH, config.SEGMENTS_BIN);
  return new AerospikeProfileStore({
    hosts: parseAerospikeHosts(config.AEROSPIKE_HOSTS),
    namespace: config.AEROSPIKE_NAMESPACE,
    user: config.AEROSPIKE_USER,
    password: config.AEROSPIKE_PASSWORD,
    connectTimeoutMs: config.AEROSPIKE_CONNECT_TIMEOUT_MS,
    socketTimeoutMs: config.AEROSPIKE_SOCKET_TIMEOUT_MS,
    totalTimeoutMs: config.AEROSPIKE_TOTAL_TIMEOUT_MS,
    maxRetries: config.AEROSPIKE_MAX_RETRIES,
  });
}
