import {
  type Env,
  type MappingJobConfig,
  mappingJobSchema,
  parseEnv,
} from '../../shared/config.js';

/** Everything the `snapshotMapping` job reads from its environment. */
export type { MappingJobConfig };

/** Validates the `snapshotMapping` job's environment; throws ConfigError naming the variable. */
export function loadMappingJobConfig(env: Env): MappingJobConfig {
  return parseEnv(mappingJobSchema, env);
}
