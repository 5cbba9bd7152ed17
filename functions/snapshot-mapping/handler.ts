import type { MappingJobConfig } from '../../shared/config.js';
import type { IdTypeRegistry } from '../../shared/id-types.js';
import { jobDeadline } from '../../shared/jobs/job-deadline.js';
import { runSnapshotJob } from '../../shared/jobs/run-snapshot-job.js';
import type { ScheduledHandler } from '../../shared/jobs/scheduled-job.js';
import { type PersonCounters, validPersons } from '../../shared/jobs/valid-persons.js';
import type { Logger } from '../../shared/logger.js';
import { mappingCodec } from '../../shared/mapping/mapping-codec.js';
import type { MappingSource } from '../../shared/mapping/mapping-source.js';
import type { SnapshotStore } from '../../shared/snapshots/snapshot-store.js';

/** What the mapping job needs, injected so tests can pass their own. */
export interface MappingJobDeps {
  readonly config: Pick<MappingJobConfig, 'MIN_ROWS_RATIO' | 'JOB_TIMEOUT_MS'>;
  readonly registry: IdTypeRegistry;
  readonly source: MappingSource;
  readonly store: SnapshotStore;
  readonly log: Logger;
  readonly now: () => number;
}

/**
 * `snapshotMapping`: streams the latest partition of the mapping table into gzip NDJSON in the
 * snapshot store (rows flow through; the table is never held) and publishes it.
 */
export function createSnapshotMappingHandler(deps: MappingJobDeps): ScheduledHandler {
  return async (event, context) => {
    const signal = jobDeadline(deps.config.JOB_TIMEOUT_MS, context.signal);
    const counters: PersonCounters = { skipped: 0, partition: undefined };
    return runSnapshotJob(
      {
        job: 'snapshotMapping',
        store: deps.store,
        codec: mappingCodec(deps.registry),
        records: validPersons(deps.source.rows(signal), deps.registry, counters, deps.log),
        skipped: () => counters.skipped,
        source: () => ({
          source: deps.source.description,
          partition: counters.partition ?? 'none',
        }),
        minRowsRatio: deps.config.MIN_ROWS_RATIO,
        log: deps.log,
        now: deps.now,
      },
      event,
    );
  };
}
