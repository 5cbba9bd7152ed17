import { createLogger, type Logger } from '../logger.js';
import { AerospikeProfileStore, parseAerospikeHosts } from './aerospike-profile-store.js';
import { EmbeddedProfileStore } from './embedded-profile-store.js';
import type { ProfileStore } from './profile-store.js';
import type { ProfileStoreSettings } from './profile-store-settings.js';

/** The profile store PROFILE_STORE selects; `log` receives its cluster events. */
export function createProfileStore(
  config: ProfileStoreSettings,
  log: Logger = createLogger({ minSeverity: config.LOG_LEVEL }),
): ProfileStore {
  if (config.PROFILE_STORE === 'embedded')
    return new EmbeddedProfileStore(config.EMBEDDED_PROFILES_PATH, config.SEGMENTS_BIN);
  const tls = config.AEROSPIKE_TLS_NAME;
  return new AerospikeProfileStore(
    {
      hosts: parseAerospikeHosts(config.AEROSPIKE_HOSTS),
      namespace: config.AEROSPIKE_NAMESPACE,
      user: config.AEROSPIKE_USER,
      password: config.AEROSPIKE_PASSWORD,
      authMode: config.AEROSPIKE_AUTH_MODE,
      tls:
        tls === undefined
          ? undefined
          : {
              name: tls,
              ca: config.AEROSPIKE_TLS_CA,
              cert: config.AEROSPIKE_TLS_CERT,
              key: config.AEROSPIKE_TLS_KEY,
            },
      connectTimeoutMs: config.AEROSPIKE_CONNECT_TIMEOUT_MS,
      socketTimeoutMs: config.AEROSPIKE_SOCKET_TIMEOUT_MS,
      totalTimeoutMs: config.AEROSPIKE_TOTAL_TIMEOUT_MS,
      maxRetries: config.AEROSPIKE_MAX_RETRIES,
      maxConnsPerNode: config.AEROSPIKE_MAX_CONNS_PER_NODE,
      maxSocketIdleSecs: config.AEROSPIKE_MAX_SOCKET_IDLE_SECS,
      logLevel: config.AEROSPIKE_LOG_LEVEL,
      segmentsBin: config.SEGMENTS_BIN,
    },
    log.child({ component: 'aerospike' }),
  );
}
