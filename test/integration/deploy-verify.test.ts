import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BigQueryEmulator } from '../emulators/bigquery-emulator.js';
import { type Sandbox, sandbox } from '../helpers/stub-cli/deploy-sandbox.js';

// `deploy.sh verify` for real: it builds the code and runs the mapping query through BigQuery's
// dry run, here against the BigQuery test server holding the mapping table (which validates
// table, column and type names the way BigQuery does). No gcloud is needed with a token set.
const TABLE = 'verify-proj.identity.user_mapping';
let bq: BigQueryEmulator;
let box: Sandbox;

beforeAll(async () => {
  box = await sandbox({ PROJECT_ID: 'verify-proj', MAPPING_TABLE: TABLE });
  bq = await BigQueryEmulator.start({ projectId: 'verify-proj' });
  bq.createTable(TABLE, [
    { name: 'partition_date', type: 'DATE' },
    { name: 'person_id', type: 'INT64' },
    { name: 'user_id', type: 'STRING' },
    { name: 'id_type', type: 'STRING' },
  ]);
});

afterAll(async () => {
  await bq.close();
});

/** Runs deploy.sh verify (asynchronously: the test server lives in this process). */
const verify = (env: Record<string, string>) =>
  box.attemptAsync(['verify'], {
    BIGQUERY_EMULATOR_HOST: bq.baseUrl,
    GOOGLE_OAUTH_ACCESS_TOKEN: 'local-test-token',
    ...env,
  });

describe('deploy.sh verify', () => {
  it('passes when the mapping query fits the table, and says what it would read', async () => {
    const before = bq.queries.length;
    const result = await verify({});
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`mapping query OK on ${TABLE}`);
    expect(result.stdout).toContain(`Verified: the mapping query is valid against ${TABLE}.`);
    // One dry run, nothing run for real.
    expect(bq.queries.slice(before).map((q) => q.dryRun)).toEqual([true]);
  }, 60_000);

  it.each([
    ['a wrong column', { MAPPING_PERSON_COLUMN: 'person' }, /person/],
    ['a wrong table', { MAPPING_TABLE: 'verify-proj.identity.missing' }, /missing/],
  ])(
    "fails with BigQuery's message on %s",
    async (_what, env, message) => {
      const result = await verify(env);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /mapping query check failed: BigQuery rejected the mapping query/,
      );
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toContain("does not pass BigQuery's dry run");
    },
    60_000,
  );
});
