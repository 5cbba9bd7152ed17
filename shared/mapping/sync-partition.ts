import type { Table } from '@google-cloud/bigtable';
import { untilAborted } from '../deadline.js';
import { BackendUnavailableError } from '../errors.js';
import type { IdTypeRegistry } from '../id-types.js';
import { countInto } from '../skip-counts.js';
import type { PartitionSource } from './bigquery-partition-source.js';
import {
  CHECKPOINT_QUALIFIER,
  FIRST_SYNC_QUALIFIER,
  type FirstSyncNote,
  idRowKey,
  LINKS_FAMILY,
  MEMBER,
  META_FAMILY,
  META_ROW,
  MOVED,
  memberQualifier,
  PERSON_QUALIFIER,
  partitionTime,
  personRowKey,
} from './bigtable-layout.js';
import { checkMappingId } from './mapping-source.js';

/** How the sync batches its writes: bounded memory, bounded work in flight. */
export interface SyncLimits {
  /** Row mutations per MutateRows call. */
  readonly batchEntries: number;
  /** Cells per person-row entry (a super-node is written in several entries). */
  readonly cellsPerEntry: number;
  /** MutateRows calls in flight at once; the reader waits beyond that (flow control). */
  readonly maxInFlight: number;
  /** Deadline of one MutateRows call. */
  readonly callTimeoutMs: number;
}

export const DEFAULT_SYNC_LIMITS: SyncLimits = {
  batchEntries: 1_000,
  cellsPerEntry: 1_000,
  maxInFlight: 4,
  callTimeoutMs: 60_000,
};

/** What syncing one partition wrote and skipped. */
export interface PartitionSyncResult {
  readonly partition: string;
  /** Ids written (id rows). */
  readonly ids: number;
  /** Row mutations sent (id rows, person rows, tombstones). */
  readonly entries: number;
  readonly skippedByReason: Readonly<Record<string, number>>;
  readonly durationMs: number;
}

type Entry = { key: string; data: Record<string, Record<string, unknown>> };

/**
 * Writes one partition's links to Bigtable, every cell timestamped with the partition's date, so
 * that writing it again yields the very same cells (idempotent: a run killed mid-partition is
 * repaired by writing the partition again). Per link: the id row's person, the member column in
 * the person row, and a tombstone in the person row the id moved away from. Rows come ordered
 * by person, so each person row is one entry per batch.
 */
export async function syncPartition(
  table: Table,
  source: PartitionSource,
  partition: string,
  registry: IdTypeRegistry,
  signal: AbortSignal,
  limits: SyncLimits = DEFAULT_SYNC_LIMITS,
): Promise<PartitionSyncResult> {
  const started = performance.now();
  const timestamp = partitionTime(partition);
  const skipped = new Map<string, number>();
  const writer = new BatchWriter(table, limits, signal);
  let ids = 0;
  let person: string | undefined;
  // A plain object (the client skips null-prototype ones); every key ends in `\0<type code>`,
  // so none can be `__proto__`.
  let members: Record<string, unknown> = {};
  let count = 0;
  const flushPerson = async () => {
    if (person !== undefined && count > 0) {
      await writer.add({ key: personRowKey(person), data: { [LINKS_FAMILY]: members } });
    }
    members = {};
    count = 0;
  };

  for await (const link of source.links(partition, signal)) {
    if (link.kind === 'dropped') {
      countInto(skipped, link.reason, link.rows);
      continue;
    }
    const checked = checkMappingId(registry, link.id, link.type);
    if ('reason' in checked) {
      countInto(skipped, checked.reason);
      continue;
    }
    if (link.person !== person || count >= limits.cellsPerEntry) {
      await flushPerson();
      person = link.person;
    }
    const qualifier = memberQualifier(checked.id, link.type);
    members[qualifier] = { value: MEMBER, timestamp };
    count++;
    ids++;
    await writer.add({
      key: idRowKey(link.type, checked.id),
      data: { [LINKS_FAMILY]: { [PERSON_QUALIFIER]: { value: link.person, timestamp } } },
    });
    if (link.movedFrom !== undefined) {
      await writer.add({
        key: personRowKey(link.movedFrom),
        data: { [LINKS_FAMILY]: { [qualifier]: { value: MOVED, timestamp } } },
      });
    }
  }
  await flushPerson();
  await writer.close();
  return {
    partition,
    ids,
    entries: writer.sent,
    skippedByReason: Object.fromEntries(skipped),
    durationMs: Math.round(performance.now() - started),
  };
}

/**
 * Records `partition` as fully synced. Written only after every cell of it has landed, and
 * timestamped with the partition's date: the newest cell is always the latest partition, even
 * if an older run writes its checkpoint late, and a rerun writes the very same cell.
 */
export function writeCheckpoint(
  table: Table,
  partition: string,
  signal: AbortSignal,
): Promise<void> {
  const cell = { value: partition, timestamp: partitionTime(partition) };
  return writeMetaCell(table, CHECKPOINT_QUALIFIER, cell, 'the sync checkpoint', signal);
}

/**
 * Records why a first sync found nothing to write, for the profile function's /health. The cell
 * is timestamped with the run's time, so the newest note is the last run's (the `m` family keeps
 * one version).
 */
export function writeFirstSyncNote(
  table: Table,
  note: FirstSyncNote,
  signal: AbortSignal,
): Promise<void> {
  const cell = { value: JSON.stringify(note), timestamp: new Date(note.checkedAt) };
  return writeMetaCell(table, FIRST_SYNC_QUALIFIER, cell, 'the first sync note', signal);
}

/** One cell of the meta row, written within 30 s (or `signal`). */
async function writeMetaCell(
  table: Table,
  qualifier: string,
  cell: { value: string; timestamp: Date },
  what: string,
  signal: AbortSignal,
): Promise<void> {
  const write = table.insert([{ key: META_ROW, data: { [META_FAMILY]: { [qualifier]: cell } } }], {
    timeout: 30_000,
  });
  try {
    await untilAborted(write, signal);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new BackendUnavailableError('bigtable', `writing ${what} failed`, { cause: err });
  }
}

/** Batches entries into MutateRows calls, at most `maxInFlight` at once. */
class BatchWriter {
  sent = 0;
  private batch: Entry[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    private readonly table: Table,
    private readonly limits: SyncLimits,
    private readonly signal: AbortSignal,
  ) {}

  async add(entry: Entry): Promise<void> {
    this.batch.push(entry);
    if (this.batch.length >= this.limits.batchEntries) await this.send();
  }

  async close(): Promise<void> {
    if (this.batch.length > 0) await this.send();
    await untilAborted(Promise.all(this.inFlight), this.signal);
    this.check();
  }

  private async send(): Promise<void> {
    this.check();
    const entries = this.batch;
    this.batch = [];
    this.sent += entries.length;
    // insert() is MutateRows of SetCell mutations; cells with explicit timestamps make a retry
    // (the client's, or a rerun's) write the same cells again.
    const call = this.table
      .insert(entries, { timeout: this.limits.callTimeoutMs })
      .then(
        () => undefined,
        (err: unknown) => {
          this.failure ??= err;
        },
      )
      .finally(() => this.inFlight.delete(call));
    this.inFlight.add(call);
    // Flow control: the reader (and BigQuery's pages) wait while the writes catch up.
    while (this.inFlight.size >= this.limits.maxInFlight) {
      await untilAborted(Promise.race(this.inFlight), this.signal);
    }
    this.check();
  }

  private check(): void {
    if (this.signal.aborted) throw this.signal.reason;
    if (this.failure !== undefined) {
      throw new BackendUnavailableError('bigtable', 'writing links failed', {
        cause: this.failure,
      });
    }
  }
}
