import { http } from '@google-cloud/functions-framework';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadCatalogJobConfig } from '../../functions/snapshot-catalog/config.js';
import { createCatalogJob } from '../../functions/snapshot-catalog/runtime.js';
import { toScheduledHttpFunction } from '../../shared/http/scheduled-http-function.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { type ServedFunction, serveFunction } from '../helpers/serve-function.js';

// The scheduled functions as deployed (functions/index.ts), with an environment that fails
// validation: the misconfiguration must look like one to the scheduler and in the logs.
const SCHEDULER = {
  'content-type': 'application/json',
  'x-cloudscheduler': 'true',
  'x-cloudscheduler-jobname': 'projects/p/locations/l/jobs/job',
};

const served: ServedFunction[] = [];
let lines: Record<string, unknown>[] = [];
const write = process.stdout.write.bind(process.stdout);

beforeAll(async () => {
  // What a deploy with a mistake gives: a MongoDB URI without its scheme, no mapping table.
  for (const name of ['MAPPING_TABLE', 'FUNCTION_TARGET']) delete process.env[name];
  Object.assign(process.env, {
    MONGO_URI: 'mongo.internal:27017',
    MONGO_DATABASE: 'adtech',
    GOOGLE_CLOUD_PROJECT: 'demo-project',
  });
  // The functions' own logger writes JSON lines to stdout: keep them for assertions.
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    const text = String(chunk);
    if (text.startsWith('{')) lines.push(JSON.parse(text) as Record<string, unknown>);
    else write(chunk);
    return true;
  });
  await import('../../functions/index.js');
});

afterAll(async () => {
  vi.restoreAllMocks();
  await Promise.all(served.map((s) => s.close()));
});

async function post(target: string, body = '{}') {
  const fn = await serveFunction(target);
  served.push(fn);
  lines = [];
  const res = await fetch(`${fn.url}/`, { method: 'POST', headers: SCHEDULER, body });
  return {
    status: res.status,
    body: (await res.json()) as { error?: { code: string; message: string } },
  };
}

describe('a scheduled function whose environment fails validation', () => {
  it.each([
    ['snapshotCatalog', 'MONGO_URI'],
    ['snapshotMapping', 'MAPPING_TABLE'],
    ['syncMapping', 'MAPPING_TABLE'],
  ])('%s answers 500 misconfigured naming %s, logged at ERROR', async (target, variable) => {
    const res = await post(target);
    // 5xx: the attempt fails where the scheduler's job status and the error rate show it (its
    // retries are bounded by the job's retry count, deploy.sh's --max-retry-attempts=3).
    expect(res.status).toBe(500);
    expect(res.body.error?.code).toBe('misconfigured');
    expect(res.body.error?.message).toContain(variable);
    const errors = lines.filter((l) => l.severity === 'ERROR');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(new RegExp(`misconfigured: .*${variable}`));
  });

  it('keeps 400 not_supported for a request the job does not support (a dry run of the catalog)', async () => {
    const { log, lines: logged } = captureLogger();
    const job = createCatalogJob(
      loadCatalogJobConfig({
        MONGO_URI: 'mongodb://127.0.0.1:1',
        MONGO_DATABASE: 'adtech',
        LOG_LEVEL: 'ERROR',
      }),
    );
    // The HTTP body schema refuses dryRun where a job has none; here it lets it through, to
    // reach the job's own check.
    http(
      'catalogWithDryRun',
      toScheduledHttpFunction(async () => job, log, { snapshots: true, dryRun: true }),
    );
    const res = await post('catalogWithDryRun', '{"dryRun":true}');
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({
      code: 'not_supported',
      message: 'snapshotCatalog has no dry run',
    });
    expect(logged.filter((l) => l.severity === 'ERROR')).toEqual([]);
  });
});
