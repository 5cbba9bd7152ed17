import { BigQuery, type BigQueryOptions, type Job } from '@google-cloud/bigquery';
import { BackendUnavailableError } from '../errors.js';
import { accessTokenAuth } from '../google-auth.js';
import type { MappingRow, MappingSource } from './mapping-source.js';

/** The mapping table and how to query it. Names are validated identifiers (see config). */
export interface BigQueryMappingOptions {
  /** `project.dataset.table` */
  readonly table: string;
  readonly personColumn: string;
  readonly idColumn: string;
  readonly typeColumn: string;
  /** A DATE column, or `_PARTITIONDATE` for ingestion-time partitioning. */
  readonly partitionColumn: string;
  /** Only partitions this recent are considered "latest" (bounds the MAX() scan). */
  readonly lookbackDays: number;
  readonly projectId?: string | undefined;
  readonly location?: string | undefined;
  readonly jobTimeoutMs: number;
  /** Rows per result page: bounds the memory the job holds (two pages at most). */
  readonly pageSize: number;
  /** A bearer token instead of Application Default Credentials. */
  readonly accessToken?: string | undefined;
}

/**
 * The one query the mapping job runs: a script that finds the latest partition within the
 * look-back window into a variable (a variable, unlike a subquery, lets BigQuery prune the
 * partitions of the main query), then returns one row per person with all their ids, ordered so
 * that unchanged data gives an identical snapshot.
 */
export function mappingQuery(o: BigQueryMappingOptions): string {
  const t = `\`${o.table}\``;
  const p = `\`${o.partitionColumn}\``;
  const id = `\`${o.idColumn}\``;
  return [
    'DECLARE latest DATE DEFAULT (',
    `  SELECT MAX(${p}) FROM ${t}`,
    `  WHERE ${p} >= DATE_SUB(CURRENT_DATE(), INTERVAL @lookback_days DAY)`,
    ');',
    'SELECT',
    '  CAST(latest AS STRING) AS partition_date,',
    `  ARRAY_AGG(STRUCT(CAST(${id} AS STRING) AS id, CAST(\`${o.typeColumn}\` AS STRING) AS type) ORDER BY ${id}) AS ids`,
    `FROM ${t}`,
    `WHERE ${p} = latest AND ${id} IS NOT NULL`,
    `GROUP BY \`${o.personColumn}\``,
    `ORDER BY MIN(${id});`,
  ].join('\n');
}

/** Reads the latest partition of the mapping table with one BigQuery query, page by page. */
export class BigQueryMappingSource implements MappingSource {
  readonly description: string;
  private client: BigQuery | undefined;

  constructor(
    private readonly options: BigQueryMappingOptions,
    client?: BigQuery,
  ) {
    this.description = `bigquery ${options.table}`;
    this.client = client;
  }

  async *rows(signal: AbortSignal): AsyncIterable<MappingRow> {
    this.client ??= new BigQuery(this.clientOptions());
    let job: Job;
    try {
      [job] = await this.client.createQueryJob({
        query: mappingQuery(this.options),
        // The REST API types parameter values as strings; a JSON number is not one.
        params: { lookback_days: String(this.options.lookbackDays) },
        types: { lookback_days: 'INT64' },
        useLegacySql: false,
        location: this.options.location,
        jobTimeoutMs: this.options.jobTimeoutMs,
      });
    } catch (err) {
      throw new BackendUnavailableError(
        'bigquery',
        `starting the query on ${this.description} failed`,
        {
          cause: err,
        },
      );
    }
    // Pages are fetched one ahead: the next request is in flight while this page's rows are
    // consumed, and at most two pages are ever held (page size bounds the memory).
    type Page = [rows: unknown[], next: Record<string, unknown> | null | undefined];
    const fetchPage = (query: Record<string, unknown>): Promise<Page> => {
      const page = job.getQueryResults({
        ...query,
        autoPaginate: false,
      }) as Promise<unknown> as Promise<Page>;
      page.catch(() => undefined); // awaited below, or abandoned when the consumer stops
      return page;
    };
    let pending: Promise<Page> | undefined = fetchPage({
      maxResults: this.options.pageSize,
    });
    try {
      while (pending) {
        if (signal.aborted) throw signal.reason;
        const page: Page = await pending;
        const [rows, nextQuery] = page;
        pending = nextQuery ? fetchPage(nextQuery) : undefined;
        for (const row of rows) yield toMappingRow(row);
      }
    } catch (err) {
      if (!signal.aborted && err instanceof BackendUnavailableError) throw err;
      // Best effort: a job nobody reads any more should not keep running (and billing).
      job.cancel().catch(() => undefined);
      if (signal.aborted) throw signal.reason;
      throw new BackendUnavailableError(
        'bigquery',
        `reading results of ${this.description} failed`,
        {
          cause: err,
        },
      );
    }
  }

  async close(): Promise<void> {}

  private clientOptions(): BigQueryOptions {
    return {
      ...(this.options.projectId ? { projectId: this.options.projectId } : {}),
      ...(this.options.location ? { location: this.options.location } : {}),
      userAgent: 'profile-api-snapshot-mapping',
      ...accessTokenAuth(this.options.accessToken),
    };
  }
}

function toMappingRow(row: unknown): MappingRow {
  const r = row as { partition_date?: unknown; ids?: unknown };
  if (typeof r.partition_date !== 'string' || !Array.isArray(r.ids)) {
    throw new BackendUnavailableError(
      'bigquery',
      'the mapping query returned rows of an unexpected shape',
    );
  }
  const ids: { id: string; type: string }[] = [];
  for (const entry of r.ids as { id?: unknown; type?: unknown }[]) {
    ids.push({ id: String(entry?.id ?? ''), type: String(entry?.type ?? '') });
  }
  return { partition: r.partition_date, ids };
}
