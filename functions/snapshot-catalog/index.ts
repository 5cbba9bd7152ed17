import { http } from '@google-cloud/functions-framework';
import { toScheduledHttpFunction } from '../../shared/http/scheduled-http-function.js';
import { createLogger } from '../../shared/logger.js';

// Loaded on demand: the profile function shares this entry module and needs no MongoDB driver.
const job = async () => (await import('./runtime.js')).catalogJob();

http('snapshotCatalog', toScheduledHttpFunction(job, createLogger()));

// Fail the deployment at start-up, naming the variable, rather than at the first scheduled run.
if (process.env.FUNCTION_TARGET === 'snapshotCatalog') await job();
