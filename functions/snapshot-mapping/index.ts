import { http } from '@google-cloud/functions-framework';
import { toScheduledHttpFunction } from '../../shared/http/scheduled-http-function.js';
import { createLogger } from '../../shared/logger.js';

// Loaded on demand: the profile function shares this entry module and needs no BigQuery client.
const job = async () => (await import('./runtime.js')).mappingJob();

http(
  'snapshotMapping',
  toScheduledHttpFunction(job, createLogger(), { snapshots: true, dryRun: true }),
);

// Fail the deployment at start-up, naming the variable, rather than at the first scheduled run.
if (process.env.FUNCTION_TARGET === 'snapshotMapping') await job();
