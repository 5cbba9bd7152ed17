import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createSnapshotMappingHandler,
  type MappingJobDeps,
} from '../../functions/snapshot-mapping/handler.js';
import { BackendUnavailableError } from '../../shared/errors.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import {
  type BigQueryMappingOptions,
  BigQueryMappingSource,
} from '../../shared/mapping/bigquery-mapping-source.js';
import { mappingCodec } from '../../shared/mapping/mapping-codec.js';
import { loadSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';
import { parseManifest } from '../../shared/snapshots/manifest.js';
import { BigQueryEmulator } from '../emulators/bigquery-emulator.js';
import { bigQueryClientFor } from '../helpers/bigquery-client.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { mappingResult, type PersonRow } from '../helpers/mapping-result.js';
import { MAPPING_COLUMNS, MAPPING_TABLE_SCHEMA } from '../helpers/partitioned-mapping.js';
import { MANUAL_RUN } from '../helpers/scheduled-event.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const registry = defaultIdTypeRegistry();
const OPTIONS: BigQueryMappingOptions = {
  table: 'my-project.identity.mapping',
  ...MAPPING_COLUMNS,
  lookbackDays: 7,
  windowDays: 1,
  jobTimeoutMs: 60_000,
  pageSize: 700,
};

const uuid = (i: number) => `${i.toString(16).padStart(8, '0')}-aaaa-4aaa-8aaa-aaaaaaaaaaaa`;
const account = (i: number) => String(1_000_000 + i);

/** Person i: a UUID (upper-cased, as a source may hold it) and an account id; every 10th adds junk. */
function person(i: number): PersonRow {
  const ids: [string, string][] = [
    [uuid(i).toUpperCase(), '222222'],
    [account(i), '444444'],
  ];
  if (i % 10 === 0) ids.push(['not-an-account', '444444'], [account(i + 5_000_000), '999999']);
  return ids;
}

let bq: BigQueryEmulator;

/** The partition the canned results come from: today's, as a daily job would read. */
const PARTITION = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  bq = await BigQueryEmulator.start({ projectId: 'my-project' });
});

afterAll(async () => {
  await bq.close();
});

beforeEach(() => {
  bq.clearFaults();
  bq.respondWith(() => mappingResult(2_500, person, PARTITION));
});

async function setup(maxMemoryBytes = 0) {
  const store = new LocalSnapshotStore(await tempDir());
  const { log, lines } = captureLogger();
  const deps: MappingJobDeps = {
    config: {
      MIN_ROWS_RATIO: 0.5,
      JOB_TIMEOUT_MS: 30_000,
      MAPPING_WINDOW_DAYS: 1,
      MAPPING_MAX_BYTES: maxMemoryBytes,
    },
    registry,
    source: new BigQueryMappingSource(OPTIONS, bigQueryClientFor(bq)),
    store,
    log,
    now: Date.now,
  };
  return { store, lines, run: createSnapshotMappingHandler(deps) };
}

describe('snapshotMapping on the BigQuery client', () => {
  it('streams the latest partition into a mapping snapshot with its partition date', async () => {
    const { store, lines, run } = await setup();
    const summary = await run(MANUAL_RUN, {});
    expect(summary).toMatchObject({
      outcome: 'published',
      rows: 5_000,
      skipped: 500,
      source: { source: 'bigquery my-project.identity.mapping', partition: PARTITION },
    });
    // Ids are never logged, only their type and the reason.
    const rejects = lines.filter((l) => l.message === 'skipping invalid mapping id');
    expect(rejects.length).toBe(20);
    expect(JSON.stringify(rejects)).not.toContain('not-an-account');

    const loaded = await loadSnapshot(store, mappingCodec(registry), undefined, {
      stallTimeoutMs: 5_000,
    });
    expect(loaded?.manifest.rows).toBe(5_000);
    expect(loaded?.value.lookup(account(42), '444444', 10)).toEqual({
      typeCode: '444444',
      linked: [{ id: uuid(42), typeCode: '222222' }],
      linkedTotal: 1,
    });
  });

  it('runs one parameterised query over the window, bounded by a job timeout', async () => {
    const { run } = await setup();
    const before = bq.queries.length;
    await run(MANUAL_RUN, {});
    const queries = bq.queries.slice(before);
    expect(queries).toHaveLength(1);
    const sql = queries[0]?.query ?? '';
    expect(sql).toContain('FROM `my-project.identity.mapping`');
    expect(sql).toContain('DECLARE last_partition DATE');
    expect(sql).toContain('WHERE `partition_date` BETWEEN first_partition AND last_partition');
    expect(queries[0]?.parameters).toEqual([
      { name: 'lookback_days', parameterType: { type: 'INT64' }, parameterValue: { value: '7' } },
      { name: 'window_days', parameterType: { type: 'INT64' }, parameterValue: { value: '1' } },
    ]);
    expect(JSON.stringify(queries[0]?.raw)).toContain('"jobTimeoutMs":"60000"');
  });

  it('refuses, even forced, a mapping that instances could not hold (MAPPING_MAX_BYTES)', async () => {
    const { store, run } = await setup(100_000);
    const refused = await run({ ...MANUAL_RUN, force: true }, {});
    expect(refused).toMatchObject({
      outcome: 'refused',
      reason: expect.stringMatching(
        /needs about \d+ bytes in memory, over MAPPING_MAX_BYTES \(100000\)/,
      ),
      version: null,
    });
    expect(refused.memoryBytes).toBeGreaterThan(100_000);
    expect(await store.readManifest('mapping')).toBeUndefined();
    expect(await store.listObjects('mapping/')).toEqual([]);

    const roomy = await setup(10_000_000);
    expect(await roomy.run(MANUAL_RUN, {})).toMatchObject({ outcome: 'published' });
  });

  it('publishes nothing new when the partition is unchanged', async () => {
    const { run } = await setup();
    const first = await run(MANUAL_RUN, {});
    expect(await run(MANUAL_RUN, {})).toMatchObject({
      outcome: 'unchanged',
      version: first.version,
    });
  });

  it('leaves the current snapshot when BigQuery fails mid-stream', async () => {
    const { store, run } = await setup();
    const first = await run(MANUAL_RUN, {});
    bq.inject({ on: 'page', page: 2, dropConnection: true });
    await expect(run(MANUAL_RUN, {})).rejects.toThrow(BackendUnavailableError);
    const stored = await store.readManifest('mapping');
    expect(stored && parseManifest(stored.body, 'mapping').version).toBe(first.version);
    expect((await store.listObjects('mapping/')).filter((n) => n.endsWith('.gz'))).toHaveLength(1);
  });

  it('refuses an empty result (no partition in the look-back window), as an answer', async () => {
    const { store, run } = await setup();
    bq.respondWith(() => mappingResult(0, person));
    expect(await run(MANUAL_RUN, {})).toMatchObject({
      outcome: 'refused',
      reason: expect.stringMatching(/empty mapping snapshot/),
      version: null,
    });
    expect(await store.readManifest('mapping')).toBeUndefined();
    expect(await store.listObjects('mapping/')).toEqual([]);
  });
});

describe('snapshotMapping on the SQL BigQuery runs (a table in the test server)', () => {
  const TABLE = OPTIONS.table;
  const DAY = '2026-11-25';
  const row = (person: string | null, id: string | null, type: string | null, day = DAY) => [
    day,
    person,
    id,
    type,
  ];
  const lookup = async (store: LocalSnapshotStore, id: string, typeCode: string) => {
    const loaded = await loadSnapshot(store, mappingCodec(registry), undefined, {
      stallTimeoutMs: 5_000,
    });
    return loaded?.value.lookup(id, typeCode, 50);
  };

  it('never links ids without a person to each other, and counts what it dropped by reason', async () => {
    bq.setCurrentDate('2026-11-26');
    bq.createTable(TABLE, MAPPING_TABLE_SCHEMA, [
      // Four strangers with no person, and two with an empty one.
      row(null, account(1), '444444'),
      row(null, account(2), '444444'),
      row(null, uuid(3), '222222'),
      row(null, account(4), '444444'),
      row('', account(5), '444444'),
      row('', account(6), '444444'),
      // A real person, and rows missing an id or a type.
      row('P1', account(7), '444444'),
      row('P1', uuid(7), '222222'),
      row('P2', null, '444444'),
      row('P2', account(8), null),
    ]);
    const { store, lines, run } = await setup();
    const summary = await run(MANUAL_RUN, {});
    expect(summary).toMatchObject({
      outcome: 'published',
      rows: 2,
      skippedByReason: { no_person: 6, no_id: 1, no_type: 1 },
      skipped: 8,
      source: { firstPartition: DAY, lastPartition: DAY, windowDays: '1' },
    });
    for (const id of [account(1), account(2), account(4), account(5)]) {
      expect(await lookup(store, id, '444444')).toBeUndefined();
    }
    expect(await lookup(store, account(7), '444444')).toMatchObject({
      linked: [{ id: uuid(7), typeCode: '222222' }],
      linkedTotal: 1,
    });
    const logged = lines.find((l) => String(l.message).startsWith('snapshotMapping: published'));
    expect(logged?.message).toMatch(/8 skipped \(no_id 1, no_person 6, no_type 1\)/);
  });

  it('gives an id that two persons claim in one partition to the lexically smallest person only', async () => {
    bq.setCurrentDate('2026-11-26');
    bq.createTable(TABLE, MAPPING_TABLE_SCHEMA, [
      row('P-b', account(1), '444444'),
      row('P-b', uuid(1), '222222'),
      row('P-a', account(1), '444444'),
      row('P-a', uuid(2), '222222'),
    ]);
    const { store, run } = await setup();
    expect(await run(MANUAL_RUN, {})).toMatchObject({ skippedByReason: { other_person: 1 } });
    expect(await lookup(store, account(1), '444444')).toMatchObject({
      linked: [{ id: uuid(2), typeCode: '222222' }],
      linkedTotal: 1,
    });
    // The losing person keeps its other ids, without the contested one.
    expect(await lookup(store, uuid(1), '222222')).toMatchObject({ linked: [], linkedTotal: 0 });
  });

  it('checks the query against the table with a dry run, naming a wrong column', async () => {
    bq.createTable(TABLE, MAPPING_TABLE_SCHEMA, [row('P1', account(1), '444444')]);
    const { run } = await setup();
    const before = bq.queries.length;
    expect(await run({ ...MANUAL_RUN, dryRun: true }, {})).toMatchObject({
      outcome: 'dry_run',
      dryRun: { tables: [TABLE] },
    });
    expect(bq.queries.slice(before).map((q) => q.dryRun)).toEqual([true]);

    const wrong = new BigQueryMappingSource(
      { ...OPTIONS, personColumn: 'person' },
      bigQueryClientFor(bq),
    );
    await expect(wrong.dryRun(AbortSignal.timeout(5_000))).rejects.toThrow(
      /BigQuery rejected the mapping query on my-project.identity.mapping: .*person/,
    );
  });
});
