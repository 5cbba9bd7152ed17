import { setTimeout as sleep } from 'node:timers/promises';
import { BigQuery, BigQueryDate, BigQueryInt, BigQueryTimestamp } from '@google-cloud/bigquery';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mappingQueryParams } from '../../shared/mapping/mapping-query.js';
import {
  BigQueryEmulator,
  type BigQueryField,
  type QueryResult,
} from '../emulators/bigquery-emulator.js';
import { bigQueryClientFor } from '../helpers/bigquery-client.js';
import { MAPPING_TABLE_SCHEMA } from '../helpers/partitioned-mapping.js';

let emulator: BigQueryEmulator;

beforeAll(async () => {
  emulator = await BigQueryEmulator.start();
});

afterAll(async () => {
  await emulator.close();
});

afterEach(() => {
  emulator.clearFaults();
});

type RetryOptions = {
  maxRetries?: number;
  maxRetryDelay?: number;
  totalTimeout?: number;
  autoRetry?: boolean;
};

function client(retryOptions: RetryOptions = { maxRetries: 2, maxRetryDelay: 0.02 }): BigQuery {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: 'fake' });
  return new BigQuery({
    projectId: emulator.projectId,
    apiEndpoint: emulator.baseUrl,
    authClient,
    retryOptions,
  });
}

function numbered(totalRows: number, extra: Partial<QueryResult> = {}): QueryResult {
  return {
    schema: [
      { name: 'n', type: 'INT64' },
      { name: 'label', type: 'STRING' },
    ],
    totalRows,
    row: (i) => [i, `row-${i}`],
    ...extra,
  };
}

function requestsSince(mark: number) {
  return emulator.requests.slice(mark);
}

async function drain(stream: NodeJS.ReadableStream, onRow: (row: unknown) => void): Promise<void> {
  for await (const row of stream) onRow(row);
}

describe('BigQueryEmulator with the real @google-cloud/bigquery client', () => {
  it('answers query() with typed rows and records named parameters with their types', async () => {
    const schema: BigQueryField[] = [
      { name: 'user_id', type: 'INT64', mode: 'REQUIRED' },
      { name: 'seen_at', type: 'TIMESTAMP' },
      { name: 'day', type: 'DATE' },
      { name: 'score', type: 'FLOAT64' },
      { name: 'active', type: 'BOOL' },
      { name: 'note', type: 'STRING' },
      { name: 'tags', type: 'STRING', mode: 'REPEATED' },
      {
        name: 'events',
        type: 'RECORD',
        mode: 'REPEATED',
        fields: [
          { name: 'kind', type: 'STRING' },
          { name: 'count', type: 'INT64' },
        ],
      },
    ];
    const seenAt = new Date('2026-11-25T10:00:00.123Z');
    emulator.respondWith(() => ({
      schema,
      totalRows: 1,
      row: () => [
        42n,
        seenAt,
        new Date('2026-11-25T00:00:00Z'),
        0.5,
        true,
        null,
        ['a', 'b'],
        [
          ['open', 3],
          ['close', 1],
        ],
      ],
    }));
    const mark = emulator.requests.length;
    const bigquery = client();

    const [rows] = await bigquery.query({
      query: 'SELECT * FROM profiles WHERE day = @d',
      params: { d: BigQuery.date('2026-11-25') },
    });

    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row.user_id).toBe(42);
    expect(row.seen_at).toBeInstanceOf(BigQueryTimestamp);
    expect(row.seen_at.value).toBe('2026-11-25T10:00:00.123Z');
    expect(row.day).toBeInstanceOf(BigQueryDate);
    expect(row.day.value).toBe('2026-11-25');
    expect(row).toMatchObject({ score: 0.5, active: true, note: null, tags: ['a', 'b'] });
    expect(row.events).toEqual([
      { kind: 'open', count: 3 },
      { kind: 'close', count: 1 },
    ]);

    const recorded = emulator.queries.at(-1);
    expect(recorded?.query).toBe('SELECT * FROM profiles WHERE day = @d');
    expect(recorded?.useLegacySql).toBe(false);
    expect(recorded?.parameters).toEqual([
      { name: 'd', parameterType: { type: 'DATE' }, parameterValue: { value: '2026-11-25' } },
    ]);
    expect(recorded?.raw).toMatchObject({
      parameterMode: 'named',
      formatOptions: { useInt64Timestamp: true },
    });
    // One page: jobs.query alone, on the apiEndpoint path prefix.
    expect(requestsSince(mark).map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /bigquery/v2/projects/test-project/queries',
    ]);

    // Traps: a plain string is typed STRING, and `types: {d: 'DATE'}` on a plain string drops
    // the value (the client reads `.value` off DATE-like types), so the parameter arrives NULL.
    const [wrapped] = await bigquery.query({
      query: 'SELECT 1',
      params: { d: '2026-11-25' },
      wrapIntegers: true,
    });
    expect(emulator.queries.at(-1)?.parameters).toEqual([
      { name: 'd', parameterType: { type: 'STRING' }, parameterValue: { value: '2026-11-25' } },
    ]);
    await bigquery.query({ query: 'SELECT 1', params: { d: '2026-11-25' }, types: { d: 'DATE' } });
    expect(emulator.queries.at(-1)?.parameters).toEqual([
      { name: 'd', parameterType: { type: 'DATE' }, parameterValue: {} },
    ]);
    expect(wrapped[0].user_id).toBeInstanceOf(BigQueryInt);
    expect(wrapped[0].user_id.value).toBe('42');

    // Float-seconds timestamps (useInt64Timestamp false) decode to the same instant.
    const [floats] = await bigquery.query('SELECT 1', {
      'formatOptions.useInt64Timestamp': false,
    });
    expect(floats[0].seen_at.value).toBe('2026-11-25T10:00:00.123Z');
  });

  it('streams 25,000 rows in 25 pages, complete and in order', async () => {
    emulator.respondWith(() => numbered(25_000, { pageSize: 1_000 }));
    const mark = emulator.requests.length;
    const seen: number[] = [];

    await drain(client().createQueryStream({ query: 'SELECT n, label FROM t' }), (row) => {
      seen.push((row as { n: number }).n);
    });

    expect(seen).toHaveLength(25_000);
    expect(seen.every((n, i) => n === i)).toBe(true);
    const calls = requestsSince(mark);
    expect(calls[0]?.path).toBe('/bigquery/v2/projects/test-project/queries');
    const pages = calls.slice(1);
    expect(pages).toHaveLength(24);
    const jobId = emulator.queries.at(-1)?.jobId ?? '';
    for (const page of pages) {
      expect(page.method).toBe('GET');
      expect(page.path).toBe(`/bigquery/v2/projects/test-project/queries/${jobId}`);
      const params = new URLSearchParams(page.query);
      expect(params.get('pageToken')).toBeTruthy();
      expect(params.get('formatOptions.useInt64Timestamp')).toBe('true');
      expect(params.get('location')).toBe('US');
    }
  });

  it('streams 1,000,000 rows while generating at most two pages ahead of the reader', async () => {
    let generated = 0;
    emulator.respondWith(() => ({
      schema: [{ name: 'n', type: 'INT64' }],
      totalRows: 1_000_000,
      pageSize: 10_000,
      row: (i) => {
        generated += 1;
        return [i];
      },
    }));
    let consumed = 0;
    let maxAhead = 0;
    let sum = 0;

    await drain(client().createQueryStream('SELECT n FROM big'), (row) => {
      consumed += 1;
      sum += (row as { n: number }).n;
      maxAhead = Math.max(maxAhead, generated - consumed);
    });

    expect(consumed).toBe(1_000_000);
    expect(sum).toBe((999_999 * 1_000_000) / 2);
    expect(emulator.largestPage).toBeLessThanOrEqual(10_000);
    // The proof of laziness; RSS is too noisy here (GC is lazy: streaming grew it ~170 MB in a
    // trial, more than query() materialising all 1M rows did).
    expect(maxAhead).toBeLessThanOrEqual(2 * 10_000);
  });

  it('polls until the job completes (pollsBeforeComplete)', async () => {
    emulator.respondWith(() => numbered(3, { pollsBeforeComplete: 3 }));
    const mark = emulator.requests.length;

    const [rows] = await client().query('SELECT n FROM slow');

    expect(rows.map((r: { n: number }) => r.n)).toEqual([0, 1, 2]);
    // jobs.query answers jobComplete:false once, then getQueryResults twice more, then rows.
    expect(requestsSince(mark).map((r) => r.method)).toEqual(['POST', 'GET', 'GET', 'GET']);

    const streamed: unknown[] = [];
    await drain(client().createQueryStream('SELECT n FROM slow'), (row) => streamed.push(row));
    expect(streamed).toHaveLength(3);

    // A client-side timeoutMs turns "not complete yet" into an error instead of polling.
    await expect(client().query('SELECT n FROM slow', { timeoutMs: 500 })).rejects.toThrow(
      'The query did not complete before 500ms',
    );
  });

  it('runs jobs.insert when jobTimeoutMs is set, and serves jobs.get', async () => {
    emulator.respondWith(() => numbered(5, { pollsBeforeComplete: 1, pageSize: 2 }));
    const bigquery = client();
    const mark = emulator.requests.length;

    const [rows] = await bigquery.query({ query: 'SELECT n FROM t', jobTimeoutMs: 30_000 });

    expect(rows).toHaveLength(5);
    expect(requestsSince(mark)[0]?.path).toBe('/bigquery/v2/projects/test-project/jobs');
    const recorded = emulator.queries.at(-1);
    expect(recorded?.raw).toMatchObject({ configuration: { jobTimeoutMs: '30000' } });
    const [job] = await bigquery.job(recorded?.jobId ?? '').get();
    expect(job.metadata).toMatchObject({
      status: { state: 'DONE' },
      configuration: { jobTimeoutMs: '30000', query: { query: 'SELECT n FROM t' } },
    });
  });

  it('fails the stream when page 3 keeps failing, after the client retries', async () => {
    emulator.respondWith(() => numbered(5_000, { pageSize: 1_000 }));
    const cases = [
      { fault: { status: 500 }, error: { code: 500, message: 'Injected backendError' } },
      { fault: { dropConnection: true }, error: { code: 'ECONNRESET' } },
      { fault: { truncateBody: true }, error: { code: 'ECONNRESET' } },
    ];
    for (const { fault, error } of cases) {
      emulator.clearFaults();
      emulator.inject({ on: 'page', page: 3, times: 100, ...fault });
      const mark = emulator.requests.length;
      let received = 0;

      const outcome = drain(client().createQueryStream('SELECT n FROM t'), () => {
        received += 1;
      });

      await expect(outcome, JSON.stringify(fault)).rejects.toMatchObject(error);
      expect(received).toBe(2_000);
      // Page 3 was asked for once plus maxRetries (2) times.
      const page3 = requestsSince(mark)
        .filter((r) => r.method === 'GET')
        .slice(1);
      expect(page3).toHaveLength(3);
    }
    emulator.clearFaults();
    emulator.inject({ on: 'page', page: 3, status: 500 });
    await expect(client().query('SELECT n FROM t')).rejects.toMatchObject({
      code: 500,
      errors: [{ reason: 'backendError' }],
    });
  });

  it('heals a transient fault through the client retry, unless retries are off', async () => {
    emulator.respondWith(() => numbered(3_000, { pageSize: 1_000 }));
    emulator.inject({ on: 'page', page: 3, status: 503, times: 1 });
    const [rows] = await client().query('SELECT n FROM t');
    expect(rows).toHaveLength(3_000);

    emulator.inject({ on: 'page', page: 3, status: 503, times: 1 });
    await expect(client({ autoRetry: false }).query('SELECT n FROM t')).rejects.toMatchObject({
      code: 503,
    });
  });

  it('documents the client time bounds: `timeout` is ignored, a short totalTimeout hangs', async () => {
    emulator.respondWith(() => numbered(1));
    emulator.inject({ on: 'query', delayMs: 300, times: 1 });
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'fake' });
    // Not in BigQueryOptions' type, but @google-cloud/common's Service reads it.
    const options = { projectId: emulator.projectId, apiEndpoint: emulator.baseUrl, authClient };
    const withTimeout = new BigQuery({ ...options, ...{ timeout: 50 } });
    const started = Date.now();
    // teeny-request 11 hands `timeout` to node-fetch 3, which dropped that option.
    const [rows] = await withTimeout.query('SELECT n FROM t');
    expect(rows).toHaveLength(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    // retry-request gives up silently when the next back-off exceeds totalTimeout.
    emulator.inject({ on: 'query', status: 503 });
    const settled = client({ maxRetries: 3, maxRetryDelay: 0.02, totalTimeout: 0.001 })
      .query('SELECT n FROM t')
      .then(
        () => 'resolved',
        () => 'rejected',
      );
    const winner = await Promise.race([settled, sleep(300).then(() => 'still pending')]);
    expect(winner).toBe('still pending');
  });

  it('rejects a failing query with a useful error', async () => {
    emulator.respondWith(() => {
      throw new Error('Syntax error: Unexpected keyword FROM at [1:8]');
    });
    const bigquery = client();
    const mark = emulator.requests.length;

    const failure = bigquery.query('SELECT FROM');
    await expect(failure).rejects.toMatchObject({
      code: 400,
      message: 'Syntax error: Unexpected keyword FROM at [1:8]',
      errors: [{ reason: 'invalidQuery' }],
    });
    // 400 is not retried.
    expect(requestsSince(mark)).toHaveLength(1);

    // Through jobs.insert the failure arrives as a DONE job with errorResult.
    await expect(bigquery.createQueryJob({ query: 'SELECT FROM' })).rejects.toThrow('Syntax error');

    emulator.respondWith(() => numbered(1));
    emulator.inject({ on: 'query', status: 400, reason: 'invalidQuery', message: 'Bad table' });
    await expect(bigquery.query('SELECT n FROM missing')).rejects.toThrow('Bad table');
  });

  it('serves BIGQUERY_EMULATOR_HOST paths and answers unknown routes with 501', async () => {
    emulator.respondWith(() => numbered(1));
    process.env.BIGQUERY_EMULATOR_HOST = emulator.baseUrl;
    const bigquery = client();
    delete process.env.BIGQUERY_EMULATOR_HOST;
    const mark = emulator.requests.length;

    const [rows] = await bigquery.query('SELECT n FROM t');
    expect(rows).toEqual([{ n: 0, label: 'row-0' }]);
    await expect(bigquery.getDatasets()).rejects.toMatchObject({ code: 501 });

    expect(requestsSince(mark).map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /projects/test-project/queries',
      'GET /projects/test-project/datasets',
    ]);
  });
});

describe('BigQueryEmulator SQL mode (registered tables, run by DuckDB)', () => {
  let sql: BigQueryEmulator;
  let bq: BigQuery;
  const MAPPING = 'my-project.identity.user_mapping';
  // Adapted from mappingSnapshotQuery (shared/mapping/mapping-query.ts): it reports every older
  // row of an id, with an extra drop reason 'older_partition', to exercise the CASE's ELSE. The
  // production query itself runs through this emulator in test/integration/snapshot-mapping.test.ts.
  const MAPPING_SCRIPT = `DECLARE last_partition DATE DEFAULT (
  SELECT MAX(\`partition_date\`) FROM \`my-project.identity.user_mapping\`
  WHERE \`partition_date\` >= DATE_SUB(CURRENT_DATE(), INTERVAL @lookback_days DAY)
);
DECLARE first_partition DATE DEFAULT DATE_SUB(last_partition, INTERVAL @window_days - 1 DAY);
WITH source AS (
  SELECT
    \`partition_date\` AS part,
    NULLIF(CAST(\`person_id\` AS STRING), '') AS person,
    NULLIF(CAST(\`user_id\` AS STRING), '') AS id,
    NULLIF(CAST(\`id_type\` AS STRING), '') AS type
  FROM \`my-project.identity.user_mapping\`
  WHERE \`partition_date\` BETWEEN first_partition AND last_partition
),
ranked AS (
  SELECT part, person, id, type,
    ROW_NUMBER() OVER newest_first AS n,
    FIRST_VALUE(part) OVER newest_first AS id_part,
    FIRST_VALUE(person) OVER newest_first AS id_person
  FROM source
  WHERE person IS NOT NULL AND id IS NOT NULL AND type IS NOT NULL
  WINDOW newest_first AS (PARTITION BY type, id ORDER BY part DESC, person)
),
dropped AS (
  SELECT IF(id IS NULL, 'no_id', IF(type IS NULL, 'no_type', 'no_person')) AS reason
  FROM source WHERE person IS NULL OR id IS NULL OR type IS NULL
  UNION ALL
  SELECT CASE
      WHEN part = id_part AND person != id_person THEN 'other_person'
      WHEN part = id_part THEN 'duplicate_row'
      WHEN person != id_person THEN 'moved'
      ELSE 'older_partition' END
  FROM ranked WHERE n > 1
)
SELECT
  CAST(first_partition AS STRING) AS first_partition,
  CAST(last_partition AS STRING) AS last_partition,
  ids, reason, row_count
FROM (
  SELECT ARRAY_AGG(STRUCT(id AS id, type AS type) ORDER BY id, type) AS ids, MIN(id) AS first_id,
    CAST(NULL AS STRING) AS reason, COUNT(*) AS row_count
  FROM ranked WHERE n = 1 GROUP BY person
  UNION ALL
  SELECT ARRAY<STRUCT<id STRING, type STRING>>[], NULL, reason, COUNT(*) FROM dropped GROUP BY reason
)
ORDER BY reason IS NULL, reason, first_id;`;
  const { params: MAPPING_PARAMS, types: MAPPING_TYPES } = mappingQueryParams(7, 3);

  beforeAll(async () => {
    sql = await BigQueryEmulator.start({ projectId: 'my-project' });
    bq = bigQueryClientFor(sql);
  });

  afterAll(async () => {
    await sql.close();
  });

  beforeEach(() => {
    sql.setCurrentDate('2026-11-25');
    sql.createTable(
      'my-project.identity.links',
      [
        { name: 'person', type: 'STRING' },
        { name: 'id', type: 'STRING' },
        { name: 'seen', type: 'INT64' },
      ],
      [
        [null, 'a', 1],
        [null, 'b', 2],
        ['p1', 'c', 3],
        ['p1', 'd', 4],
        ['p2', 'e', 5],
      ],
    );
  });

  it('groups all NULL persons together, as BigQuery does, and sorts NULLs first', async () => {
    const [rows] = await bq.query(
      'SELECT person, ARRAY_AGG(id ORDER BY id) AS ids, COUNT(*) AS n ' +
        'FROM `my-project.identity.links` GROUP BY person ORDER BY person',
    );

    // Every id without a person lands in ONE group: the linking bug this server must show.
    expect(rows).toEqual([
      { person: null, ids: ['a', 'b'], n: 2 },
      { person: 'p1', ids: ['c', 'd'], n: 2 },
      { person: 'p2', ids: ['e'], n: 1 },
    ]);
  });

  it('runs windows, QUALIFY, UNION ALL and names unnamed columns f0_, f1_', async () => {
    const [latest] = await bq.query(
      'SELECT person, id FROM identity.links ' +
        'QUALIFY ROW_NUMBER() OVER (PARTITION BY person ORDER BY seen DESC) = 1 ' +
        "UNION ALL SELECT 'total', CAST(COUNT(*) AS STRING) FROM identity.links " +
        'ORDER BY person DESC',
    );
    expect(latest).toEqual([
      { person: 'total', id: '5' },
      { person: 'p2', id: 'e' },
      { person: 'p1', id: 'd' },
      { person: null, id: 'b' },
    ]);

    const [counts] = await bq.query(
      'SELECT COUNT(*), COUNTIF(person IS NULL), SUM(seen) AS total FROM `my-project.identity.links`',
    );
    expect(counts).toEqual([{ f0_: 5, f1_: 2, total: 15 }]);
  });

  it('computes expressions with BigQuery semantics', async () => {
    const cases: [string, unknown][] = [
      ['CAST(1.0 AS STRING)', '1'],
      ['CAST(2.5 AS INT64)', 3],
      ["SAFE_CAST('x' AS INT64)", null],
      ["IF(NULL, 'a', 'b')", 'b'],
      ["IFNULL(NULL, 'z')", 'z'],
      ["NULLIF('', '')", null],
      ['1 != NULL', null],
      ["CONCAT('a', NULL)", null],
      ['GREATEST(1, NULL)', null],
      ['0.1 + 0.2', 0.30000000000000004],
      ['2147483647 + 1', 2147483648],
      ["SUBSTR('hello', 0, 2)", 'he'],
      ['ARRAY_LENGTH([1, 2, 3])', 3],
      ["STRUCT(1 AS a, 'x' AS b)", { a: 1, b: 'x' }],
      ["CAST(DATE_ADD(DATE '2026-01-31', INTERVAL 1 MONTH) AS STRING)", '2026-02-28'],
      ["EXTRACT(DAYOFWEEK FROM DATE '2026-11-29')", 1],
      ["DATE_DIFF(DATE '2026-02-01', DATE '2026-01-31', MONTH)", 1],
      ["CAST(TIMESTAMP '2026-11-25 10:00:00+02' AS STRING)", '2026-11-25 08:00:00+00'],
      ["'a_c' LIKE 'a\\\\_c'", true],
      ["'abc' LIKE 'a\\\\_c'", false],
      ["REGEXP_CONTAINS('abc', 'b')", true],
    ];
    for (const [expression, expected] of cases) {
      const [rows] = await bq.query(`SELECT ${expression} AS v`);
      expect(rows, expression).toEqual([{ v: expected }]);
    }
  });

  it('fails what BigQuery fails, and what it cannot model, with 400 invalidQuery', async () => {
    const cases: [string, string][] = [
      ['SELECT 1 / 0', 'division by zero'],
      ["SELECT CAST('1e3' AS INT64)", 'Bad int64 value: 1e3'],
      ['SELECT ARRAY_AGG(person) FROM identity.links', 'Array cannot have a null element'],
      ['SELECT person_idx FROM identity.links', 'Unrecognized name: person_idx'],
      ['SELECT 1 UNION SELECT 2', 'Expected keyword DISTINCT or keyword ALL'],
      ["SELECT FARM_FINGERPRINT('a')", 'Function FARM_FINGERPRINT is not supported'],
      ['SELECT 1 AS x, 2 AS x', 'Duplicate column names in the result are not supported'],
      ['SELECT @missing', "Query parameter 'missing' not found at [1:8]"],
      ['DECLARE seen INT64 DEFAULT 1; SELECT seen FROM identity.links', 'Variable seen'],
      ['INSERT INTO identity.links (id) VALUES (1)', 'not supported'],
    ];
    for (const [query, message] of cases) {
      const failure = bq.query(query);
      await expect(failure, query).rejects.toMatchObject({
        code: 400,
        errors: [{ reason: 'invalidQuery' }],
      });
      await expect(bq.query(query), query).rejects.toThrow(message);
    }
  });

  it('answers 404 for a table that is not registered, in BigQuery words', async () => {
    await expect(
      bq.query('SELECT id FROM `my-project.identity.nope` JOIN identity.links USING (id)'),
    ).rejects.toMatchObject({
      code: 404,
      message: 'Not found: Table my-project:identity.nope was not found in location US',
      errors: [{ reason: 'notFound' }],
    });
  });

  it('runs the production mapping script: DECLAREs, windows, typed empty arrays', async () => {
    const row = (day: string, person: string | null, id: string | null, type: string | null) => ({
      partition_date: day,
      person_id: person,
      user_id: id,
      id_type: type,
    });
    const today = '2026-11-25';
    sql.createTable(MAPPING, MAPPING_TABLE_SCHEMA, [
      row(today, 'P1', 'u1', 't1'),
      row(today, 'P1', 'u1', 't1'), // duplicate_row
      row(today, 'P1', 'u2', 't2'),
      row(today, 'P2', 'u3', 't1'),
      row(today, null, 'u4', 't1'), // no_person
      row(today, '', 'u5', 't1'), // no_person: empty strings are NULLs
      row(today, 'P3', '', 't1'), // no_id
      row(today, 'P3', 'u6', null), // no_type
      row(today, 'P4', 'u7', 't1'),
      row(today, 'P5', 'u7', 't1'), // other_person: same id under two persons, one partition
      row('2026-11-24', 'P6', 'u2', 't2'), // moved: u2 now belongs to P1
      row('2026-11-24', 'P1', 'u1', 't1'), // older_partition
      row('2026-11-23', 'P8', 'u8', 't1'), // outside the 3-day window
      row('2026-11-22', 'P9', 'u9', 't1'), // outside the 3-day window
      row('2026-11-26', 'P9', 'u10', 't1'), // a future partition is still the latest
    ]);
    sql.insertRows(MAPPING, [row('2026-11-10', 'P9', 'u11', 't1')]);
    sql.setCurrentDate('2026-11-27');

    const [rows] = await bq.query({
      query: MAPPING_SCRIPT,
      params: MAPPING_PARAMS,
      types: MAPPING_TYPES,
    });

    // Latest partition 2026-11-26, window of 3 days: 24th to 26th.
    const window = { first_partition: '2026-11-24', last_partition: '2026-11-26' };
    const reason = (name: string, count: number) => ({
      ...window,
      ids: [],
      reason: name,
      row_count: count,
    });
    const person = (ids: [string, string][]) => ({
      ...window,
      ids: ids.map(([id, type]) => ({ id, type })),
      reason: null,
      row_count: ids.length,
    });
    expect(rows).toEqual([
      reason('duplicate_row', 1),
      reason('moved', 1),
      reason('no_id', 1),
      reason('no_person', 2),
      reason('no_type', 1),
      reason('older_partition', 1),
      reason('other_person', 1),
      person([
        ['u1', 't1'],
        ['u2', 't2'],
      ]),
      person([['u10', 't1']]),
      person([['u3', 't1']]),
      person([['u7', 't1']]),
    ]);
  });

  it('takes typed parameters and CURRENT_DATE, and pages results like handler mode', async () => {
    const days = Array.from({ length: 25 }, (_, i) => `2026-11-${String(i + 1).padStart(2, '0')}`);
    sql.createTable(
      MAPPING,
      MAPPING_TABLE_SCHEMA,
      days.map((day, i) => [day, `P${i}`, `u${i}`, 't1']),
    );

    const [one] = await bq.query({
      query:
        'SELECT `user_id` AS id FROM `my-project.identity.user_mapping` WHERE `partition_date` = @partition',
      params: { partition: BigQuery.date('2026-11-07') },
    });
    expect(one).toEqual([{ id: 'u6' }]);

    const [after] = await bq.query({
      query:
        'SELECT DISTINCT CAST(`partition_date` AS STRING) AS p FROM `my-project.identity.user_mapping` ' +
        'WHERE `partition_date` > @after ORDER BY p',
      params: { after: BigQuery.date('2026-11-22') },
    });
    expect(after).toEqual([{ p: '2026-11-23' }, { p: '2026-11-24' }, { p: '2026-11-25' }]);

    const [typed] = await bq.query({
      query: 'SELECT @n + 1 AS n, @s AS s, @b AS b, @f * 2 AS f, CURRENT_DATE() AS today',
      params: { n: 41, s: 'x', b: true, f: 0.25 },
    });
    expect(typed).toHaveLength(1);
    expect(typed[0]).toMatchObject({ n: 42, s: 'x', b: true, f: 0.5 });
    expect(typed[0].today.value).toBe('2026-11-25');

    // Paged as the mapping source reads: getQueryResults with maxResults, one page at a time.
    const [job] = await bq.createQueryJob({
      query:
        'SELECT `user_id` AS id FROM `my-project.identity.user_mapping` ORDER BY `partition_date`',
    });
    const pages: string[][] = [];
    let next: Record<string, unknown> | null | undefined = { maxResults: 10 };
    while (next) {
      const page = (await job.getQueryResults({ ...next, autoPaginate: false })) as unknown as [
        { id: string }[],
        Record<string, unknown> | null,
      ];
      pages.push(page[0].map((r) => r.id));
      next = page[1];
    }
    expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
    expect(pages.flat()).toEqual(days.map((_, i) => `u${i}`));
  });

  it('answers dry runs with statistics and no job; bad SQL fails like a real run', async () => {
    sql.createTable(MAPPING, MAPPING_TABLE_SCHEMA, [['2026-11-25', 'P1', 'u1', 't1']]);
    const ranBefore = sql.queries.filter((q) => !q.dryRun).length;

    const [job] = await bq.createQueryJob({
      query: MAPPING_SCRIPT,
      params: MAPPING_PARAMS,
      types: MAPPING_TYPES,
      dryRun: true,
    });

    const metadata = job.metadata;
    expect(metadata.status).toEqual({ state: 'DONE' });
    expect(metadata.jobReference).toEqual({ projectId: 'my-project', location: 'US' });
    expect(metadata.configuration).toMatchObject({
      dryRun: true,
      query: { query: MAPPING_SCRIPT },
    });
    expect(metadata.statistics.query).toMatchObject({
      totalBytesBilled: '0',
      cacheHit: false,
      statementType: 'SCRIPT',
      referencedTables: [
        { projectId: 'my-project', datasetId: 'identity', tableId: 'user_mapping' },
      ],
    });
    // One row. The first DECLARE reads the DATE column (8 bytes); the query reads it again and
    // three 2-character strings (2 bytes + length each): 8 + 8 + 3 * 4.
    expect(metadata.statistics.totalBytesProcessed).toBe('28');
    expect(metadata.statistics.query.totalBytesProcessed).toBe('28');
    expect(sql.queries.at(-1)).toMatchObject({ dryRun: true, jobId: '' });
    expect(sql.queries.filter((q) => !q.dryRun)).toHaveLength(ranBefore);
    // Nothing was stored: the job the client named does not exist.
    await expect(job.getMetadata()).rejects.toMatchObject({ code: 404 });

    const [select] = await bq.createQueryJob({
      query: 'SELECT `user_id` AS id, 1 FROM `my-project.identity.user_mapping`',
      dryRun: true,
    });
    expect(select.metadata.statistics.query).toMatchObject({
      statementType: 'SELECT',
      schema: {
        fields: [
          { name: 'id', type: 'STRING', mode: 'NULLABLE' },
          { name: 'f0_', type: 'INTEGER', mode: 'NULLABLE' },
        ],
      },
    });

    const badColumn = MAPPING_SCRIPT.replace('NULLIF(CAST(`person_id`', 'NULLIF(CAST(`person_idx`');
    await expect(
      bq.createQueryJob({
        query: badColumn,
        params: MAPPING_PARAMS,
        types: MAPPING_TYPES,
        dryRun: true,
      }),
    ).rejects.toMatchObject({ code: 400, message: expect.stringContaining('person_idx') });

    const missing = MAPPING_SCRIPT.replaceAll('identity.user_mapping', 'identity.gone');
    await expect(
      bq.createQueryJob({
        query: missing,
        params: MAPPING_PARAMS,
        types: MAPPING_TYPES,
        dryRun: true,
      }),
    ).rejects.toMatchObject({
      code: 404,
      message: 'Not found: Table my-project:identity.gone was not found in location US',
    });

    // jobs.query takes dryRun too, and answers a QueryResponse without rows or jobId.
    const response = await fetch(`${sql.baseUrl}/bigquery/v2/projects/my-project/queries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'SELECT `user_id` FROM identity.user_mapping',
        useLegacySql: false,
        dryRun: true,
      }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      jobComplete: true,
      jobReference: { projectId: 'my-project', location: 'US' },
      totalBytesProcessed: '4',
    });
    expect(body).not.toHaveProperty('rows');
  });

  it('keeps handler mode for queries that name no registered table', async () => {
    sql.respondWith(() => numbered(2));
    try {
      const [handled] = await bq.query('SELECT n, label FROM t');
      expect(handled).toEqual([
        { n: 0, label: 'row-0' },
        { n: 1, label: 'row-1' },
      ]);
      const [real] = await bq.query('SELECT COUNT(*) AS n FROM identity.links');
      expect(real).toEqual([{ n: 5 }]);
      await expect(bq.query('SELECT 1 FROM identity.missing')).rejects.toMatchObject({ code: 404 });
    } finally {
      sql.respondWith(undefined);
    }
  });
});
