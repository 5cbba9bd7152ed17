// Snapshot job throughput: mapping rows from the BigQuery test server to the GCS test server,
// each in its own process, through the production job code. Prints rows/s and peak RSS.
//   tsx test/bench/mapping-job-bench.ts 1000000 5000000
import { createSnapshotMappingHandler } from '../../functions/snapshot-mapping/handler.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { silentLogger } from '../../shared/logger.js';
import { BigQueryMappingSource } from '../../shared/mapping/bigquery-mapping-source.js';
import { GcsSnapshotStore } from '../../shared/snapshots/gcs-snapshot-store.js';
import { bigQueryClientFor } from '../helpers/bigquery-client.js';
import { IDS_PER_PERSON } from './bench-data.js';
import { startChildServer } from './child-server.js';
import { sampleMemory } from './memory-sampler.js';

/** One measured run of the mapping job. */
export interface MappingJobFigures {
  readonly ids: number;
  readonly seconds: number;
  readonly idsPerSecond: number;
  readonly peakRssBytes: number;
  readonly peakHeapBytes: number;
  readonly baselineRssBytes: number;
  readonly snapshotBytes: number;
}

/** Runs the mapping job once over `ids` ids (persons of three) and measures it. */
export async function benchMappingJob(ids: number): Promise<MappingJobFigures> {
  const persons = Math.ceil(ids / IDS_PER_PERSON);
  const bq = await startChildServer<{ baseUrl: string; projectId: string }>(
    'bigquery',
    String(persons),
  );
  const gcs = await startChildServer<{ baseUrl: string }>('gcs');
  try {
    const client = bigQueryClientFor(bq.info);
    const run = createSnapshotMappingHandler({
      config: {
        MIN_ROWS_RATIO: 0,
        JOB_TIMEOUT_MS: 3_600_000,
        MAPPING_WINDOW_DAYS: 1,
        MAPPING_MAX_BYTES: 0,
      },
      registry: defaultIdTypeRegistry(),
      source: new BigQueryMappingSource(
        {
          table: 'bench-project.identity.mapping',
          personColumn: 'person_id',
          idColumn: 'user_id',
          typeColumn: 'id_type',
          partitionColumn: 'partition_date',
          lookbackDays: 7,
          windowDays: 1,
          jobTimeoutMs: 3_600_000,
          pageSize: 20_000,
        },
        client,
      ),
      store: new GcsSnapshotStore(
        'gs://bench/snapshots',
        { requestTimeoutMs: 60_000 },
        { apiEndpoint: gcs.info.baseUrl },
      ),
      log: silentLogger,
      now: Date.now,
    });
    global.gc?.();
    const baselineRssBytes = process.memoryUsage().rss;
    const stop = sampleMemory();
    const started = performance.now();
    const summary = await run(
      { trigger: 'manual', jobName: undefined, scheduleTime: undefined, force: true },
      {},
    );
    const seconds = (performance.now() - started) / 1000;
    const { peakRssBytes, peakHeapBytes } = stop();
    return {
      ids: summary.rows,
      seconds,
      idsPerSecond: summary.rows / seconds,
      peakRssBytes,
      peakHeapBytes,
      baselineRssBytes,
      snapshotBytes: summary.bytes,
    };
  } finally {
    await Promise.all([bq.stop(), gcs.stop()]);
  }
}

const MB = 1024 * 1024;

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number);
  for (const ids of sizes.length > 0 ? sizes : [1_000_000]) {
    const f = await benchMappingJob(ids);
    console.log(
      `mapping job ${f.ids} ids: ${f.seconds.toFixed(1)} s, ${Math.round(f.idsPerSecond)} ids/s, ` +
        `peak RSS ${(f.peakRssBytes / MB).toFixed(0)} MB (baseline ${(f.baselineRssBytes / MB).toFixed(0)} MB), ` +
        `peak heap ${(f.peakHeapBytes / MB).toFixed(0)} MB, ` +
        `snapshot ${(f.snapshotBytes / MB).toFixed(1)} MB`,
    );
  }
}
