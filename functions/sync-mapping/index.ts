import { http } from '@google-cloud/functions-framework';
import { toScheduledHttpFunction } from '../../shared/http/scheduled-http-function.js';
import { createLogger } from '../../shared/logger.js';

// Loaded on demand: the other functions share this entry module and need no Bigtable client.
const job = async () => (await import('./runtime.js')).syncJob();

http('syncMapping', toScheduledHttpFunction(job, createLogger(), { sync: true }));

// Fail the deployment at start-up, naming the variable, rather than at the first scheduled run.
if (process.env.FUNCTION_TARGET === 'syncMapping') await job();
