import type { MappingJobConfig } from '../../shared/config.js';
import type { IdTypeRegistry } from '../../shared/id-types.js';
import { runSnapshotJob } from '../../shared/jobs/run-snapshot-job.js';
import type { ScheduledHandler } from '../../shared/jobs/scheduled-job.js';
import { personCounters, validPersons } from '../../shared/jobs/valid-persons.js';
import type { Logger } from '../../shared/logger.js';
import { mappingCodec } from '../../shared/mapping/mapping-codec.js';
import type { MappingSource } from '../../shared/mapping/mapping-source.js';
import type { SnapshotStore } from '../../shared/snapshots/snapshot-store.js';

/** What the mapping job needs, injected so tests can pass their own. */
export interface MappingJobDeps {
  readonly config: Pick<
    MappingJobConfig,
    'MIN_ROWS_RATIO' | 'JOB_TIMEOUT_MS' | 'MAPPING_MAX_BYTES' | 'MAPPING_WINDOW_DAYS'
  >;
  readonly registry: IdTypeRegistry;
  readonly source: MappingSource;
  readonly store: SnapshotStore;
  readonly log: Logger;
  readonly now: () => number;
}

/**
 * `snapshotMapping`: streams the mapping window (cleaned by BigQuery, see mappingSnapshotQuery)
 * into gzip NDJSON in the snapshot store (rows flow through; the table is never held) and
 * publishes it. `{"dryRun": true}` checks the query against the real table instead.
 */
export function createSnapshotMappingHandler(deps: MappingJobDeps): ScheduledHandler {
  return async (event, context) => {
    const counters = personCounters();
    return runSnapshotJob(
      {
        job: 'snapshotMapping',
        store: deps.store,
        codec: mappingCodec(deps.registry),
        records: (signal) =>
          validPersons(deps.source.rows(signal), deps.registry, counters, deps.log),
        skippedByReason: () => counters.skippedByReason,
        source: () => ({
          source: deps.source.description,
          // The last partition is the one a single-day window reads: kept under its old name.
          partition: counters.window?.last ?? 'none',
          firstPartition: counters.window?.first ?? 'none',
          lastPartition: counters.window?.last ?? 'none',
          windowDays: String(deps.config.MAPPING_WINDOW_DAYS),
        }),
        dryRun: async (signal) => {
          const checked = await deps.source.dryRun(signal);
          return {
            totalBytesProcessed: checked.totalBytesProcessed,
            tables: checked.referencedTables,
          };
        },
        minRowsRatio: deps.config.MIN_ROWS_RATIO,
        maxMemoryBytes: deps.config.MAPPING_MAX_BYTES,
        timeoutMs: deps.config.JOB_TIMEOUT_MS,
        log: deps.log,
        now: deps.now,
      },
      event,
      context.signal,
    );
  };
}
