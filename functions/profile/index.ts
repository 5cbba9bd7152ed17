import { http } from '@google-cloud/functions-framework';
import { toHttpFunction } from '../../shared/http/functions-framework-adapter.js';
import { createLogger } from '../../shared/logger.js';
import { profileRuntime } from './runtime.js';

http(
  'profile',
  toHttpFunction(() => profileRuntime().handler, createLogger()),
);

// Start loading snapshots while the platform routes the first request, but only in an
// instance that serves this function (all functions share one entry module).
if (process.env.FUNCTION_TARGET === 'profile') profileRuntime().warmUp();
