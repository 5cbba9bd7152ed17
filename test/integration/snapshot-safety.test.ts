import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSnapshotCatalogHandler } from '../../functions/snapshot-catalog/handler.js';
import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import type { CatalogDocument, CatalogSource } from '../../shared/catalog/catalog-source.js';
import { JobTimeoutError } from '../../shared/errors.js';
import type { JobSummary, ScheduledEvent } from '../../shared/jobs/scheduled-job.js';
import { GcsSnapshotStore } from '../../shared/snapshots/gcs-snapshot-store.js';
import { loadSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { parseManifest } from '../../shared/snapshots/manifest.js';
import { publishSnapshot } from '../../shared/snapshots/publish-snapshot.js';
import { GcsEmulator, type Lifecycle } from '../emulators/gcs-emulator.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

// What a publication leaves in a real bucket when the network or the job misbehaves, and what
// the bucket's retention rule (the one deploy.sh installs) then deletes: never what is served.
const ROOT = new URL('../..', import.meta.url).pathname;
const BUCKET = 'safety';
const DAY_MS = 86_400_000;
const RUN: ScheduledEvent = {
  trigger: 'cloud-scheduler',
  jobName: undefined,
  scheduleTime: undefined,
  force: false,
};

let gcs: GcsEmulator;
let prefixNo = 0;
let workDir: string;

beforeAll(async () => {
  gcs = await GcsEmulator.start();
  gcs.createBucket(BUCKET);
  workDir = await makeTempDir();
});

afterAll(async () => {
  await gcs.close();
  await removeTempDir(workDir);
});

beforeEach(() => gcs.clearFaults());

function newStore(prefix: string): GcsSnapshotStore {
  return new GcsSnapshotStore(
    `gs://${BUCKET}/${prefix}`,
    { requestTimeoutMs: 1_000 },
    { apiEndpoint: gcs.baseUrl, projectId: 'test' },
  );
}

/** A catalog source whose documents the test sets before each run. */
class ListSource implements CatalogSource {
  readonly description = 'test segments';
  documents: (signal: AbortSignal) => AsyncIterable<CatalogDocument> = async function* () {};
  set(n: number, tag: string): this {
    this.documents = async function* () {
      for (let i = 0; i < n; i++) yield { id: String(i), name: `s${i}-${tag}` };
    };
    return this;
  }
  async close(): Promise<void> {}
}

function catalogJob(prefix: string, source: CatalogSource, timeoutMs = 30_000) {
  const { log, lines } = captureLogger();
  const run = createSnapshotCatalogHandler({
    config: { MIN_ROWS_RATIO: 0, JOB_TIMEOUT_MS: timeoutMs },
    source,
    store: newStore(prefix),
    log,
    now: Date.now,
  });
  return { run: (event: Partial<ScheduledEvent> = {}) => run({ ...RUN, ...event }, {}), lines };
}

/** The retention rule deploy.sh installs on the bucket, for this snapshot prefix. */
function deployedLifecycle(prefix: string): Lifecycle {
  const work = join(workDir, prefix);
  const result = spawnSync('bash', [join(ROOT, 'deploy.sh')], {
    cwd: ROOT,
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${join(ROOT, 'test/helpers/stub-cli')}:${process.env.PATH}`,
      STUB_LOG: join(workDir, `${prefix}.log`),
      STUB_STATE: workDir,
      DRY_RUN: '1',
      DEPLOY_WORK_DIR: work,
      PROJECT_ID: 'demo-proj',
      AEROSPIKE_HOSTS: '10.0.0.5:3000',
      VPC_CONNECTOR: 'aerospike-connector',
      MONGO_DATABASE: 'adtech',
      MAPPING_TABLE: 'demo-proj.identity.user_mapping',
      SNAPSHOT_PREFIX: prefix,
    },
  });
  if (result.status !== 0) throw new Error(`deploy.sh failed: ${result.stderr}`);
  return JSON.parse(readFileSync(join(work, 'lifecycle.json'), 'utf8')) as Lifecycle;
}

async function currentManifest(prefix: string) {
  const stored = await newStore(prefix).readManifest('catalog');
  if (!stored) throw new Error('no manifest');
  return parseManifest(stored.body, 'catalog');
}

describe('publishing when the network misbehaves', () => {
  it('counts a manifest write that landed but whose answers were lost as published', async () => {
    const prefix = `lost-answer-${++prefixNo}`;
    const store = newStore(prefix);
    await publishSnapshot(store, catalogCodec, Readable.from([{ id: '1', name: 'one' }]), {
      source: {},
      minRowsRatio: 0,
    });
    // Every manifest upload lands, then its connection drops: the client's retries see only
    // resets and conflicts, so the call fails although the first attempt committed.
    gcs.inject({
      match: (r) =>
        r.method === 'POST' && r.query.get('name') === `${prefix}/catalog/manifest.json`,
      commitThenDrop: true,
    });
    const notes: string[] = [];
    const result = await publishSnapshot(
      store,
      catalogCodec,
      Readable.from([
        { id: '1', name: 'one' },
        { id: '2', name: 'two' },
      ]),
      { source: {}, minRowsRatio: 0, onNote: (message) => notes.push(message) },
    );
    gcs.clearFaults();
    expect(result.outcome).toBe('published');
    expect(notes).toEqual(['catalog manifest write reported an error but had landed']);
    const current = await currentManifest(prefix);
    expect(current.version).toBe(result.manifest.version);
    // The manifest names an object that exists and loads.
    const loaded = await loadSnapshot(store, catalogCodec, undefined, { stallTimeoutMs: 1_000 });
    expect(loaded?.value.size).toBe(2);
  });

  it('ends a run whose upload stalls within JOB_TIMEOUT_MS, publishing nothing', async () => {
    const prefix = `stalled-${++prefixNo}`;
    const source = new ListSource().set(50_000, 'a');
    const { run } = catalogJob(prefix, source, 1_500);
    gcs.inject({ match: (r) => r.method === 'PUT' || r.method === 'POST', hangBeforeBody: true });
    const started = Date.now();
    const err = await Promise.race([
      run().catch((e: unknown) => e),
      new Promise((resolve) => setTimeout(() => resolve('still running after 10 s'), 10_000)),
    ]);
    gcs.clearFaults();
    expect(err).toBeInstanceOf(JobTimeoutError);
    expect((err as Error).message).toMatch(/within 1500 ms \(JOB_TIMEOUT_MS\)/);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(await newStore(prefix).readManifest('catalog')).toBeUndefined();
  });
});

describe('retention by the bucket lifecycle rule deploy.sh installs', () => {
  it('never deletes what the manifest names, through publications, a rollback and an orphan', async () => {
    const prefix = `retention-${++prefixNo}`;
    gcs.setLifecycle(BUCKET, deployedLifecycle(prefix));
    const source = new ListSource();
    const { run } = catalogJob(prefix, source, 5_000);
    const published: JobSummary[] = [];
    for (const tag of ['v1', 'v2', 'v3']) {
      source.set(10, tag);
      published.push(await run());
    }
    const [v1, v2, v3] = published.map((s) => s.version ?? '');

    // A run killed between its upload and its manifest swap left this behind, hours ago.
    const orphan = `${prefix}/catalog/20261101T000000Z-0badf00d.json.gz`;
    gcs.putObject(BUCKET, orphan, 'partial upload');
    gcs.backdate(BUCKET, orphan, new Date(Date.now() - 3 * 3_600_000));

    // v3 is bad: roll back to v1. Its object was superseded when v2 was published.
    const rolledBack = await run({ rollbackTo: v1 });
    expect(rolledBack).toMatchObject({ outcome: 'rolled_back', previousVersion: v3 });
    const current = await currentManifest(prefix);
    expect(current.version).toBe(rolledBack.version);
    expect(current.source).toMatchObject({ rolledBackFrom: v1 });
    expect(rolledBack.orphansMarked).toBe(1);

    // Evaluate the rule as time passes; the served object must survive every evaluation.
    const named = [`${prefix}/${current.object}`, `${prefix}/catalog/manifest.json`];
    const deleted: string[] = [];
    for (const days of [1, 29, 31, 90, 365]) {
      const gone = gcs.runLifecycle(BUCKET, new Date(Date.now() + days * DAY_MS));
      expect(gone.filter((n) => named.includes(n))).toEqual([]);
      deleted.push(...gone);
    }
    const old = [v1, v2, v3].flatMap((v) => [
      `${prefix}/catalog/${v}.json.gz`,
      `${prefix}/catalog/${v}.manifest.json`,
    ]);
    expect(deleted.sort()).toEqual([...old, orphan].sort());
    const left = gcs.listObjectNames(BUCKET).filter((n) => n.startsWith(`${prefix}/`));
    expect(left.sort()).toEqual(
      [...named, `${prefix}/catalog/${current.version}.manifest.json`].sort(),
    );
    const loaded = await loadSnapshot(newStore(prefix), catalogCodec, undefined, {
      stallTimeoutMs: 1_000,
    });
    expect(loaded?.value.find('3')?.bytes.toString()).toBe('{"id":"3","name":"s3-v1"}');
  });
});
