import type { Table } from '@google-cloud/bigtable';
import {
  createSyncMappingHandler,
  type SyncJobDeps,
  type SyncSummary,
} from '../../functions/sync-mapping/handler.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import type { ScheduledEvent } from '../../shared/jobs/scheduled-job.js';
import { type Logger, silentLogger } from '../../shared/logger.js';
import { BigQueryVersionSource } from '../../shared/mapping/bigquery-version-source.js';
import type { SyncLimits } from '../../shared/mapping/sync-shard.js';
import { bigQueryClientFor } from './bigquery-client.js';
import { GRAPH_TABLE } from './graph-stack.js';
import { MAPPING_COLUMNS } from './partitioned-mapping.js';
import { MANUAL_RUN } from './scheduled-event.js';

/** Small batches, so that a test graph of a few thousand ids still spans many calls. */
export const TEST_LIMITS: SyncLimits = {
  batchEntries: 200,
  cellsPerEntry: 50,
  maxInFlight: 2,
  callTimeoutMs: 10_000,
  claimLeaseMs: 5_000,
};

/** The BigQuery version source of the graph stack's table (GRAPH_TABLE, or `table` on its server). */
export function graphSource(
  bq: { baseUrl: string; projectId: string },
  pageSize = 100,
  table = GRAPH_TABLE,
): BigQueryVersionSource {
  return new BigQueryVersionSource(
    { table, ...MAPPING_COLUMNS, jobTimeoutMs: 60_000, pageSize },
    bigQueryClientFor(bq),
  );
}

/** What a test changes about a sync job; everything else is the graph stack's. */
export interface TestSyncOptions {
  readonly bq: { baseUrl: string; projectId: string };
  readonly table: Table;
  readonly windowDays: number;
  readonly lookbackDays?: number;
  readonly config?: Partial<SyncJobDeps['config']>;
  readonly source?: SyncJobDeps['source'];
  readonly queue?: SyncJobDeps['queue'];
  readonly limits?: SyncLimits;
  readonly log?: Logger;
  readonly now?: () => number;
  /** SETTLE_MS in production; none by default here (tests start versions back to back). */
  readonly settleMs?: number;
  readonly pageSize?: number;
}

/** syncMapping on the graph stack's table into `table`, called by hand. */
export function testSyncJob(
  options: TestSyncOptions,
): (event?: Partial<ScheduledEvent>, signal?: AbortSignal) => Promise<SyncSummary> {
  const run = createSyncMappingHandler({
    config: {
      JOB_TIMEOUT_MS: 60_000,
      MAPPING_WINDOW_DAYS: options.windowDays,
      MAPPING_LOOKBACK_DAYS: options.lookbackDays ?? 7,
      MIN_ROWS_RATIO: 0.5,
      SYNC_SHARD_PERSONS: 100,
      SYNC_INLINE_WORKERS: 1,
      ...options.config,
    },
    registry: defaultIdTypeRegistry(),
    source: options.source ?? graphSource(options.bq, options.pageSize),
    table: async () => options.table,
    queue: options.queue,
    limits: options.limits ?? TEST_LIMITS,
    log: options.log ?? silentLogger,
    now: options.now ?? Date.now,
    settleMs: options.settleMs ?? 0,
  });
  return (event = {}, signal) => run({ ...MANUAL_RUN, ...event }, signal ? { signal } : {});
}

/**
 * Runs a sync until a version lands (each run continuing where the last one stopped), `pauseMs`
 * between runs (a shard another run still holds is left to a later one).
 */
export async function syncUntilLanded(
  sync: () => Promise<SyncSummary>,
  maxRuns = 50,
  pauseMs = 0,
): Promise<SyncSummary[]> {
  const runs: SyncSummary[] = [];
  for (let i = 0; i < maxRuns; i++) {
    const summary = await sync();
    runs.push(summary);
    if (summary.outcome !== 'in_progress') return runs;
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  throw new Error(`no version landed in ${maxRuns} runs: ${JSON.stringify(runs.at(-1))}`);
}
