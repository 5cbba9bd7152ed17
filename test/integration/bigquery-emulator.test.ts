import { setTimeout as sleep } from 'node:timers/promises';
import { BigQuery, BigQueryDate, BigQueryInt, BigQueryTimestamp } from '@google-cloud/bigquery';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BigQueryEmulator,
  type BigQueryField,
  type QueryResult,
} from '../emulators/bigquery-emulator.js';

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
