// `node dist/functions/snapshot-mapping/dry-run.js`: checks the mapping job's query against the
// real table with BigQuery's dry run (free of charge: nothing is read), from the same environment
// the job reads. deploy.sh verify runs it before any scheduled run can fail on a wrong table,
// column or type. Prints one line; exits 0 when BigQuery accepts the query, 1 otherwise.

import { describeError, InvalidQueryError } from '../../shared/errors.js';
import { loadMappingJobConfig } from './config.js';
import { mappingSourceFor } from './runtime.js';

try {
  const config = loadMappingJobConfig(process.env);
  const checked = await mappingSourceFor(config).dryRun(AbortSignal.timeout(60_000));
  console.log(
    `mapping query OK on ${config.MAPPING_TABLE} (window ${config.MAPPING_WINDOW_DAYS} day(s)): ` +
      `BigQuery would process ${checked.totalBytesProcessed} bytes`,
  );
} catch (err) {
  const message = err instanceof InvalidQueryError ? err.message : describeError(err);
  console.error(`mapping query check failed: ${message}`);
  process.exitCode = 1;
}
