/*
 * In-memory BigQuery REST v2 server for tests: jobs.query, jobs.insert (query jobs), jobs.get and
 * getQueryResults, enough for the real @google-cloud/bigquery 9.x client.
 *
 * Client recipe (offline). The client authorises every request even against a custom endpoint,
 * so it needs an auth client holding a fake token; apiEndpoint makes it call /bigquery/v2/...,
 * BIGQUERY_EMULATOR_HOST makes it call /projects/... directly (both paths are served):
 *
 *   const authClient = new OAuth2Client(); // from google-auth-library
 *   authClient.setCredentials({ access_token: 'fake' });
 *   const bigquery = new BigQuery({
 *     projectId: emulator.projectId,
 *     apiEndpoint: emulator.baseUrl,
 *     authClient,
 *     // Default is 3 retries with 2 s, 4 s, 8 s (+ up to 1 s jitter) back-off: too slow for tests.
 *     retryOptions: { maxRetries: 2, maxRetryDelay: 0.05 },
 *   });
 *
 * Two ways to answer a query. Handler mode (respondWith): rows are produced on demand from
 * QueryResult.row(i), one page per response, so a result of millions of rows never sits in
 * memory; such a job is "running" for pollsBeforeComplete status reports, then done. SQL mode
 * (createTable): a query that names a registered table runs for real, BigQuery SQL translated
 * to DuckDB (see bigquery-sql.ts); a query naming an unregistered table is then 404.
 *
 * Dry runs (configuration.dryRun) validate the query and answer statistics at once, no job.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BigQuerySqlEngine, BigQuerySqlError, record, type SqlRequest } from './bigquery-sql.js';

/** A column of a query result schema, as BigQuery describes it. */
export interface BigQueryField {
  name: string;
  type: string;
  mode?: 'NULLABLE' | 'REQUIRED' | 'REPEATED';
  fields?: BigQueryField[];
}

/** A query result produced lazily: rows are generated page by page, so millions of rows never sit in memory. */
export interface QueryResult {
  schema: BigQueryField[];
  totalRows: number;
  /** Values in schema order; strings pass through as already encoded (DATETIME, BYTES as base64,
   * JSON...), bigint TIMESTAMPs are epoch µs, number TIMESTAMPs and DATEs epoch ms. */
  row: (index: number) => unknown[];
  pageSize?: number;
  pollsBeforeComplete?: number;
}

/** A query as received; raw is the whole request body (a QueryRequest, or a Job for jobs.insert). */
export interface RecordedQuery {
  query: string;
  parameters: unknown;
  useLegacySql: unknown;
  jobId: string;
  raw: unknown;
  /** True for a dry run (which creates no job: jobId is empty). */
  dryRun?: boolean;
}

/** A failure to inject; getQueryResults page 1 is the first page served by GET (and its polls). */
export interface BigQueryFault {
  on: 'query' | 'page';
  page?: number;
  status?: number;
  reason?: string;
  message?: string;
  delayMs?: number;
  dropConnection?: boolean;
  truncateBody?: boolean;
  times?: number;
}

/** One HTTP request as received: path as sent (with or without /bigquery/v2), raw query string. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
}

type Route = { kind: string; project: string; jobId: string };
interface Reply {
  status: number;
  body: unknown;
}
interface JobError {
  status: number;
  reason: string;
  message: string;
}
interface Job {
  projectId: string;
  jobId: string;
  location: string;
  configuration: unknown;
  result?: QueryResult;
  error?: JobError;
  pollsLeft: number;
  /** statistics.query of a job run by the SQL engine. */
  queryStatistics?: Record<string, unknown>;
}

const DEFAULT_PAGE_SIZE = 10_000;
// A real server holds an unfinished job's status request for up to timeoutMs (default 10 s).
const MAX_HOLD_MS = 50;
const DEFAULT_REASONS = new Map([
  [400, 'invalidQuery'],
  [404, 'notFound'],
  [429, 'rateLimitExceeded'],
]);

const ROUTES = new Map([
  ['POST queries', 'query'],
  ['GET queries/id', 'results'],
  ['POST jobs', 'insert'],
  ['GET jobs/id', 'get'],
]);

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** An in-memory BigQuery REST v2 endpoint for the real client; start with BigQueryEmulator.start(). */
export class BigQueryEmulator {
  private handler: ((q: RecordedQuery) => QueryResult) | undefined;
  private readonly sql = new BigQuerySqlEngine();
  private readonly recordedQueries: RecordedQuery[] = [];
  private readonly recordedRequests: RecordedRequest[] = [];
  private readonly jobs = new Map<string, Job>();
  private readonly jobsByRequestId = new Map<string, Promise<Job>>();
  private faults: { fault: BigQueryFault; left: number }[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly closing = new AbortController();
  private largest = 0;

  private constructor(
    private readonly server: Server,
    readonly baseUrl: string,
    readonly projectId: string,
  ) {
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req, res) => void this.handle(req, res));
  }

  /** Listens on 127.0.0.1 with an ephemeral port. */
  static async start(options: { projectId?: string } = {}): Promise<BigQueryEmulator> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    const baseUrl = `http://127.0.0.1:${address.port}`;
    return new BigQueryEmulator(server, baseUrl, options.projectId ?? 'test-project');
  }

  /**
   * Sets how queries are answered; a handler that throws fails the query with 400 invalidQuery.
   * undefined removes the handler: with tables registered, every query then runs on them.
   */
  respondWith(handler: ((q: RecordedQuery) => QueryResult) | undefined): void {
    this.handler = handler;
  }

  /**
   * Registers (or replaces) a table for SQL mode; path is `project.dataset.table`. Rows are
   * arrays in schema order or objects by column name; they are checked against the schema here.
   */
  createTable(
    path: string,
    schema: BigQueryField[],
    rows?: unknown[][] | Record<string, unknown>[],
  ): void {
    this.sql.createTable(path, schema, rows);
  }

  /** Appends rows to a table registered with createTable. */
  insertRows(path: string, rows: unknown[][] | Record<string, unknown>[]): void {
    this.sql.insertRows(path, rows);
  }

  /** What CURRENT_DATE() returns in SQL mode ('YYYY-MM-DD'); undefined = today's UTC date. */
  setCurrentDate(date: string | undefined): void {
    this.sql.setCurrentDate(date);
  }

  /** Every query received, in order (a jobs.query retried with the same requestId counts once). */
  get queries(): ReadonlyArray<RecordedQuery> {
    return this.recordedQueries;
  }

  /** Every HTTP request received, including faulted and unknown ones. */
  get requests(): ReadonlyArray<RecordedRequest> {
    return this.recordedRequests;
  }

  /** Most rows ever encoded into one response: evidence that results are never built whole. */
  get largestPage(): number {
    return this.largest;
  }

  /** Adds a fault; matching faults apply in injection order before normal handling. */
  inject(fault: BigQueryFault): void {
    this.faults.push({ fault, left: fault.times ?? Number.POSITIVE_INFINITY });
  }

  /** Removes all injected faults. */
  clearFaults(): void {
    this.faults = [];
  }

  /** Stops listening and destroys open (keep-alive) sockets so the test process can exit. */
  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    await this.sql.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const [path = '', query = ''] = (req.url ?? '/').split('?', 2);
    this.recordedRequests.push({ method, path, query });
    try {
      const url = new URL(req.url ?? '/', 'http://emulator');
      const body = await readJson(req);
      const route = parseRoute(method, url.pathname);
      const on = route.kind === 'query' || route.kind === 'insert' ? 'query' : 'page';
      let truncate = false;
      if (route.kind === 'query' || route.kind === 'insert' || route.kind === 'results') {
        const page = on === 'page' ? this.pageNumber(route.jobId, url.searchParams) : 0;
        const outcome = await this.applyFaults(on, page, res);
        if (outcome === 'answered') return;
        truncate = outcome === 'truncate';
      }
      send(res, await this.dispatch(route, body, url.searchParams), truncate);
    } catch (error) {
      if (this.closing.signal.aborted || res.headersSent) return;
      const message = error instanceof Error ? error.message : String(error);
      send(
        res,
        error instanceof HttpError
          ? errorReply(error.status, error.reason, message)
          : errorReply(500, 'internalError', `emulator: ${message}`),
      );
    }
  }

  private async applyFaults(
    on: 'query' | 'page',
    page: number,
    res: ServerResponse,
  ): Promise<'answered' | 'truncate' | undefined> {
    for (const entry of [...this.faults]) {
      const { fault } = entry;
      if (entry.left <= 0 || fault.on !== on) continue;
      if (on === 'page' && fault.page !== undefined && fault.page !== page) continue;
      entry.left -= 1;
      if (fault.delayMs) await sleep(fault.delayMs, undefined, { signal: this.closing.signal });
      if (fault.dropConnection) {
        res.destroy();
        return 'answered';
      }
      if (fault.status !== undefined) {
        const reason = fault.reason ?? DEFAULT_REASONS.get(fault.status) ?? 'backendError';
        send(res, errorReply(fault.status, reason, fault.message ?? `Injected ${reason}`));
        return 'answered';
      }
      if (fault.truncateBody) return 'truncate';
    }
    return undefined;
  }

  private async dispatch(
    route: Route,
    body: Record<string, unknown>,
    params: URLSearchParams,
  ): Promise<Reply> {
    switch (route.kind) {
      case 'query':
        return this.jobsQuery(route.project, body);
      case 'insert':
        return this.jobsInsert(route.project, body);
      case 'results':
        return this.getQueryResults(this.job(route), params);
      case 'get':
        return { status: 200, body: this.jobResource(this.job(route), false) };
      default:
        throw new HttpError(501, 'notImplemented', `Emulator does not serve ${route.kind}`);
    }
  }

  private async jobsQuery(project: string, body: Record<string, unknown>): Promise<Reply> {
    const location = text(body.location) ?? 'US';
    if (body.dryRun === true) {
      const dry = await this.dryRun(project, location, body, body);
      // jobs.query answers a QueryResponse, not a Job: no rows, no jobId, nothing to fetch.
      return {
        status: 200,
        body: {
          kind: 'bigquery#queryResponse',
          jobReference: { projectId: project, location },
          jobComplete: true,
          totalBytesProcessed: dry.totalBytesProcessed,
          cacheHit: false,
          ...(dry.schema ? { schema: dry.schema } : {}),
        },
      };
    }
    // Real BigQuery deduplicates retried jobs.query calls by requestId; the client sends one.
    const requestId = typeof body.requestId === 'string' ? body.requestId : undefined;
    const known = requestId === undefined ? undefined : this.jobsByRequestId.get(requestId);
    const pending = known ?? this.createJob(project, location, newJobId(), body, body);
    if (requestId !== undefined) this.jobsByRequestId.set(requestId, pending);
    const job = await pending;
    if (job.error) return errorReply(job.error.status, job.error.reason, job.error.message);
    const kind = 'bigquery#queryResponse';
    if (job.pollsLeft > 0) return this.pending(job, kind, body.timeoutMs);
    const int64 = record(body.formatOptions).useInt64Timestamp === true;
    return this.results(job, kind, 0, positive(body.maxResults), int64);
  }

  private async jobsInsert(project: string, body: Record<string, unknown>): Promise<Reply> {
    const ref = record(body.jobReference);
    const config = record(body.configuration);
    const jobId = text(ref.jobId) ?? newJobId();
    const location = text(ref.location) ?? 'US';
    if (typeof record(config.query).query !== 'string') {
      throw new HttpError(501, 'notImplemented', 'Emulator only runs query jobs');
    }
    if (config.dryRun === true) {
      const dry = await this.dryRun(project, location, record(config.query), body);
      const query = {
        totalBytesProcessed: dry.totalBytesProcessed,
        totalBytesBilled: '0',
        cacheHit: false,
        statementType: dry.statementType,
        referencedTables: dry.referencedTables,
        ...(dry.schema ? { schema: dry.schema } : {}),
      };
      // Like BigQuery: DONE at once, no jobId (the job does not exist), nothing to poll.
      return {
        status: 200,
        body: {
          kind: 'bigquery#job',
          jobReference: { projectId: project, location },
          configuration: body.configuration,
          status: { state: 'DONE' },
          statistics: {
            creationTime: String(Date.now()),
            totalBytesProcessed: dry.totalBytesProcessed,
            query,
          },
        },
      };
    }
    if (this.jobs.has(jobId)) {
      throw new HttpError(409, 'duplicate', `Already Exists: Job ${project}:${location}.${jobId}`);
    }
    const job = await this.createJob(project, location, jobId, record(config.query), body);
    return { status: 200, body: this.jobResource(job, true) };
  }

  /** Validates a dry-run query: the SQL engine when it names registered tables, else the handler. */
  private async dryRun(
    projectId: string,
    location: string,
    query: Record<string, unknown>,
    raw: Record<string, unknown>,
  ): Promise<{
    totalBytesProcessed: string;
    statementType: string;
    referencedTables: unknown[];
    schema?: unknown;
  }> {
    const recorded = this.record(query, '', raw, true);
    const request = sqlRequest(projectId, location, query);
    if (this.usesSql(request)) {
      try {
        const stats = await this.sql.dryRun(request);
        return {
          totalBytesProcessed: String(stats.totalBytesProcessed),
          statementType: stats.statementType,
          referencedTables: stats.referencedTables,
          ...(stats.schema ? { schema: { fields: stats.schema.map(schemaJson) } } : {}),
        };
      } catch (error) {
        throw asHttpError(error);
      }
    }
    let result: QueryResult;
    try {
      result = this.answer(recorded);
    } catch (error) {
      throw new HttpError(
        400,
        'invalidQuery',
        error instanceof Error ? error.message : String(error),
      );
    }
    return {
      totalBytesProcessed: '0',
      statementType: 'SELECT',
      referencedTables: [],
      schema: { fields: result.schema.map(schemaJson) },
    };
  }

  /**
   * Once tables are registered, a query naming any `dataset.table` runs on them (an unregistered
   * one is then 404), and so does every query when no handler is set; the rest go to the handler.
   */
  private usesSql(request: SqlRequest): boolean {
    if (!this.sql.hasTables) return false;
    return this.handler === undefined || this.sql.namesTables(request);
  }

  private answer(recorded: RecordedQuery): QueryResult {
    if (!this.handler) throw new Error('no result configured');
    return this.handler(recorded);
  }

  private record(
    query: Record<string, unknown>,
    jobId: string,
    raw: Record<string, unknown>,
    dryRun: boolean,
  ): RecordedQuery {
    const recorded: RecordedQuery = {
      query: text(query.query) ?? '',
      parameters: query.queryParameters,
      useLegacySql: query.useLegacySql,
      jobId,
      raw,
      dryRun,
    };
    this.recordedQueries.push(recorded);
    return recorded;
  }

  private async getQueryResults(job: Job, params: URLSearchParams): Promise<Reply> {
    if (job.error) throw new HttpError(job.error.status, job.error.reason, job.error.message);
    const kind = 'bigquery#getQueryResultsResponse';
    if (job.pollsLeft > 0) return this.pending(job, kind, params.get('timeoutMs'));
    const int64 = params.get('formatOptions.useInt64Timestamp') === 'true';
    return this.results(job, kind, startIndex(params), positive(params.get('maxResults')), int64);
  }

  private async createJob(
    projectId: string,
    location: string,
    jobId: string,
    query: Record<string, unknown>,
    raw: Record<string, unknown>,
  ): Promise<Job> {
    const recorded = this.record(query, jobId, raw, false);
    const configuration = raw.configuration ?? { query: raw };
    const job: Job = { projectId, jobId, location, configuration, pollsLeft: 0 };
    // Registered before running, so a concurrent jobs.insert with this id is a duplicate.
    this.jobs.set(jobId, job);
    const request = sqlRequest(projectId, location, query);
    if (this.usesSql(request)) {
      try {
        const outcome = await this.sql.run(request);
        const rows = outcome.rows;
        job.result = { schema: outcome.schema, totalRows: rows.length, row: (i) => rows[i] ?? [] };
        job.queryStatistics = {
          totalBytesProcessed: String(outcome.totalBytesProcessed),
          statementType: outcome.statementType,
          referencedTables: outcome.referencedTables,
        };
      } catch (error) {
        const failure = asHttpError(error);
        job.error = { status: failure.status, reason: failure.reason, message: failure.message };
      }
      return job;
    }
    try {
      job.result = this.answer(recorded);
      job.pollsLeft = job.result.pollsBeforeComplete ?? 0;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      job.error = { status: 400, reason: 'invalidQuery', message };
    }
    return job;
  }

  private jobResource(job: Job, countsAsPoll: boolean): unknown {
    const running = !job.error && job.pollsLeft > 0;
    if (running && countsAsPoll) job.pollsLeft -= 1;
    const failure = job.error && { reason: job.error.reason, message: job.error.message };
    return {
      kind: 'bigquery#job',
      id: `${job.projectId}:${job.location}.${job.jobId}`,
      jobReference: reference(job),
      configuration: job.configuration,
      status: failure
        ? { state: 'DONE', errorResult: failure, errors: [failure] }
        : { state: running ? 'RUNNING' : 'DONE' },
      statistics: {
        creationTime: String(Date.now()),
        ...(job.queryStatistics ? { query: job.queryStatistics } : {}),
      },
    };
  }

  private results(
    job: Job,
    kind: string,
    start: number,
    maxResults: number | undefined,
    int64: boolean,
  ): Reply {
    const result = job.result;
    if (!result) throw new Error(`job ${job.jobId} has no result`);
    const end = Math.min(start + pageSize(result, maxResults), result.totalRows);
    const rows: unknown[] = [];
    for (let i = start; i < end; i++) {
      const values = result.row(i);
      if (values.length !== result.schema.length) {
        throw new Error(`row ${i} has ${values.length} values for ${result.schema.length} fields`);
      }
      rows.push({
        f: result.schema.map((field, c) => ({ v: encodeCell(field, values[c], int64) })),
      });
    }
    this.largest = Math.max(this.largest, rows.length);
    const body: Record<string, unknown> = {
      kind,
      jobReference: reference(job),
      jobComplete: true,
      schema: { fields: result.schema.map(schemaJson) },
      totalRows: String(result.totalRows),
      totalBytesProcessed: String(job.queryStatistics?.totalBytesProcessed ?? '0'),
      cacheHit: false,
    };
    // Like BigQuery: no rows key on an empty page, no pageToken on the last one.
    if (rows.length > 0) body.rows = rows;
    if (end < result.totalRows) body.pageToken = Buffer.from(`start:${end}`).toString('base64url');
    return { status: 200, body };
  }

  private job(route: Route): Job {
    const job = this.jobs.get(route.jobId);
    if (!job)
      throw new HttpError(404, 'notFound', `Not found: Job ${route.project}:${route.jobId}`);
    return job;
  }

  private pageNumber(jobId: string, params: URLSearchParams): number {
    const result = this.jobs.get(jobId)?.result;
    if (!result) return 1;
    try {
      const size = pageSize(result, positive(params.get('maxResults')));
      return Math.floor(startIndex(params) / size) + 1;
    } catch {
      return 1;
    }
  }

  private async pending(job: Job, kind: string, timeoutMs: unknown): Promise<Reply> {
    job.pollsLeft -= 1;
    const wanted = timeoutMs === null || timeoutMs === undefined ? 10_000 : Number(timeoutMs);
    const ms = Math.min(Number.isFinite(wanted) ? wanted : 0, MAX_HOLD_MS);
    if (ms > 0) await sleep(ms, undefined, { signal: this.closing.signal });
    return { status: 200, body: { kind, jobReference: reference(job), jobComplete: false } };
  }
}

function sqlRequest(
  projectId: string,
  location: string,
  query: Record<string, unknown>,
): SqlRequest {
  return {
    query: text(query.query) ?? '',
    projectId,
    location,
    parameters: query.queryParameters,
    keyResultStatement: record(query.scriptOptions).keyResultStatement,
  };
}

function asHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof BigQuerySqlError)
    return new HttpError(error.status, error.reason, error.message);
  const message = error instanceof Error ? error.message : String(error);
  return new HttpError(500, 'internalError', `emulator: ${message}`);
}

function parseRoute(method: string, pathname: string): Route {
  const match = /^(?:\/bigquery\/v2)?\/projects\/([^/]+)\/(queries|jobs)(?:\/([^/]+))?$/.exec(
    pathname,
  );
  const unknown = { kind: `${method} ${pathname}`, project: '', jobId: '' };
  if (!match) return unknown;
  const [, project = '', collection, id] = match;
  const route = { project: decodeURIComponent(project), jobId: decodeURIComponent(id ?? '') };
  const kind = ROUTES.get(`${method} ${collection}${id === undefined ? '' : '/id'}`);
  return kind === undefined ? unknown : { kind, ...route };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(Buffer.from(chunk));
  const raw = Buffer.concat(chunks).toString('utf8');
  if (raw.trim() === '') return {};
  try {
    return record(JSON.parse(raw));
  } catch {
    throw new HttpError(400, 'parseError', 'Invalid JSON payload received');
  }
}

function send(res: ServerResponse, reply: Reply, truncate = false): void {
  const bytes = Buffer.from(JSON.stringify(reply.body));
  res.writeHead(reply.status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': bytes.length,
  });
  if (!truncate) {
    res.end(bytes);
    return;
  }
  // The declared length promises more than arrives, so the client sees a premature close.
  res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
}

function errorReply(status: number, reason: string, message: string): Reply {
  const errors = [{ message, domain: 'global', reason }];
  return { status, body: { error: { code: status, message, errors } } };
}

function reference(job: Job) {
  return { projectId: job.projectId, jobId: job.jobId, location: job.location };
}

function schemaJson(field: BigQueryField): unknown {
  const json = { name: field.name, type: field.type, mode: field.mode ?? 'NULLABLE' };
  return field.fields ? { ...json, fields: field.fields.map(schemaJson) } : json;
}

function pageSize(result: QueryResult, maxResults: number | undefined): number {
  return Math.max(1, Math.min(result.pageSize ?? DEFAULT_PAGE_SIZE, maxResults ?? Infinity));
}

function startIndex(params: URLSearchParams): number {
  const token = params.get('pageToken');
  if (token) {
    const match = /^start:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
    if (!match?.[1]) throw new HttpError(400, 'invalid', `Invalid page token: ${token}`);
    return Number(match[1]);
  }
  return positive(params.get('startIndex')) ?? 0;
}

function encodeCell(field: BigQueryField, value: unknown, int64: boolean): unknown {
  if (field.mode === 'REPEATED') {
    // BigQuery has no NULL arrays: they come back empty.
    if (value === null || value === undefined) return [];
    if (!Array.isArray(value)) throw new Error(`${field.name} is REPEATED but got ${typeof value}`);
    return value.map((item) => ({ v: encodeValue(field, item, int64) }));
  }
  return encodeValue(field, value, int64);
}

function encodeValue(field: BigQueryField, value: unknown, int64: boolean): unknown {
  if (value === null || value === undefined) return null;
  if (field.type === 'RECORD' || field.type === 'STRUCT') {
    const fields = field.fields ?? [];
    const values = Array.isArray(value) ? value : fields.map((f) => record(value)[f.name]);
    return { f: fields.map((f, i) => ({ v: encodeCell(f, values[i], int64) })) };
  }
  if (typeof value === 'string') return value;
  if (field.type === 'TIMESTAMP') return encodeTimestamp(micros(value), int64);
  if (field.type === 'DATE') return asDate(value).toISOString().slice(0, 10);
  // INT64, FLOAT64, NUMERIC and BOOL all travel as strings.
  return String(value);
}

function micros(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  return BigInt(Math.round(asDate(value).getTime() * 1000));
}

function asDate(value: unknown): Date {
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value);
  throw new Error(`expected a Date, got ${typeof value}`);
}

function encodeTimestamp(us: bigint, int64: boolean): string {
  if (int64) return us.toString();
  // Float seconds as Java's Double.toString prints them, e.g. "1.7320968E9".
  const seconds = Number(us) / 1e6;
  const abs = Math.abs(seconds);
  if (abs === 0 || (abs >= 1e-3 && abs < 1e7)) {
    const plain = String(seconds);
    return plain.includes('.') ? plain : `${plain}.0`;
  }
  const [mantissa = '0', exponent = '0'] = seconds.toExponential().split('e');
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}E${Number(exponent)}`;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function positive(value: unknown): number | undefined {
  const n = typeof value === 'string' || typeof value === 'number' ? Number(value) : Number.NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

function newJobId(): string {
  return `job_${randomUUID().replaceAll('-', '')}`;
}
