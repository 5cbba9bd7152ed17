import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import type { CatalogSource } from '../../shared/catalog/catalog-source.js';
import { runSnapshotJob } from '../../shared/jobs/run-snapshot-job.js';
import type { ScheduledHandler } from '../../shared/jobs/scheduled-job.js';
import { validSegments } from '../../shared/jobs/valid-segments.js';
import type { Logger } from '../../shared/logger.js';
import type { SnapshotStore } from '../../shared/snapshots/snapshot-store.js';
import type { CatalogJobConfig } from './config.js';

/** What the catalog job needs, injected so tests can pass their own. */
export interface CatalogJobDeps {
  readonly config: Pick<CatalogJobConfig, 'MIN_ROWS_RATIO' | 'JOB_TIMEOUT_MS'>;
  readonly source: CatalogSource;
  readonly store: SnapshotStore;
  readonly log: Logger;
  readonly now: () => number;
}

/** `snapshotCatalog`: streams the segment collection into a new catalog snapshot and publishes it. */
export function createSnapshotCatalogHandler(deps: CatalogJobDeps): ScheduledHandler {
  return async (event, context) => {
    const counters = { skippedByReason: new Map<string, number>() };
    return runSnapshotJob(
      {
        job: 'snapshotCatalog',
        store: deps.store,
        codec: catalogCodec,
        records: (signal) => validSegments(deps.source.documents(signal), counters, deps.log),
        skippedByReason: () => counters.skippedByReason,
        source: () => ({ source: deps.source.description }),
        minRowsRatio: deps.config.MIN_ROWS_RATIO,
        maxMemoryBytes: 0,
        timeoutMs: deps.config.JOB_TIMEOUT_MS,
        log: deps.log,
        now: deps.now,
      },
      event,
      context.signal,
    );
  };
}
