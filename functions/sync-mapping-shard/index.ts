import { http } from '@google-cloud/functions-framework';
import { toHttpFunction } from '../../shared/http/functions-framework-adapter.js';
import { createLogger } from '../../shared/logger.js';

// Loaded on demand: the other functions share this entry module and need no Bigtable client.
const worker = async () => (await import('./runtime.js')).shardWorker();

http(
  'syncMappingShard',
  toHttpFunction(() => async (event, context) => (await worker())(event, context), createLogger()),
);

// Fail the deployment at start-up, naming the variable, rather than at the first push.
if (process.env.FUNCTION_TARGET === 'syncMappingShard') await worker();
