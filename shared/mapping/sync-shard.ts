import type { Table } from '@google-cloud/bigtable';
import { untilAborted } from '../deadline.js';
import { BackendUnavailableError } from '../errors.js';
import type { IdTypeRegistry } from '../id-types.js';
import type { ResultPages, VersionRow } from './bigquery-version-source.js';
import {
  COUNT_QUALIFIER,
  idRowKey,
  LINKS_FAMILY,
  MEMBER,
  memberQualifier,
  PERSON_QUALIFIER,
  personRowKey,
  type VersionRecord,
  versionExpiry,
} from './bigtable-layout.js';
import { checkMappingId } from './mapping-source.js';
import {
  claimShard,
  deletePlan,
  markDone,
  type PlanState,
  pendingShards,
  readPlan,
  releaseClaim,
  renewClaim,
  type ShardStats,
  type SyncPlan,
  saveProgress,
  shardRange,
  writeVersion,
} from './sync-plan.js';

/** How a shard is written: bounded memory, bounded work in flight. */
export interface SyncLimits {
  /** Row mutations per MutateRows call. */
  readonly batchEntries: number;
  /** Cells per person-row entry (a super-node is written in several entries). */
  readonly cellsPerEntry: number;
  /** MutateRows calls in flight at once per worker; the reader waits beyond that (flow control). */
  readonly maxInFlight: number;
  /** Deadline of one MutateRows call. */
  readonly callTimeoutMs: number;
  /** How long a worker's claim on a shard lasts unless renewed (it is, after every page). */
  readonly claimLeaseMs: number;
}

export const DEFAULT_SYNC_LIMITS: SyncLimits = {
  batchEntries: 1_000,
  cellsPerEntry: 1_000,
  maxInFlight: 4,
  callTimeoutMs: 60_000,
  claimLeaseMs: 120_000,
};

/** One shard to write, and what the worker may spend on it. */
export interface ShardTask {
  readonly table: Table;
  readonly source: ResultPages;
  readonly registry: IdTypeRegistry;
  readonly limits: SyncLimits;
  /** The plan the shard belongs to (the worker reads it; an older plan's shard is stale). */
  readonly planId: string;
  readonly shard: number;
  /** Random per attempt: whose claim is whose. */
  readonly workerId: string;
  /** A clean stop: no page starts after it aborts; the page being written lands, progress is saved. */
  readonly stop: AbortSignal;
  /** Abandons everything (the platform's deadline). */
  readonly signal: AbortSignal;
  readonly now: () => number;
}

/** How an attempt at a shard ended. */
export type ShardOutcome =
  | {
      readonly outcome: 'done';
      readonly stats: ShardStats;
      /** This shard was the version's last: the version is now the one readers use. */
      readonly completed: VersionRecord | undefined;
    }
  /** Another attempt landed it already. */
  | { readonly outcome: 'already_done' }
  /** Its plan is no longer the one in progress (done, or replaced): nothing to do. */
  | { readonly outcome: 'stale' }
  /** Another worker holds its claim (or took it over): try again later. */
  | { readonly outcome: 'busy' }
  /** Stopped cleanly at `offset` (the deadline came): the next attempt continues from there. */
  | { readonly outcome: 'stopped'; readonly offset: number };

/**
 * Writes one shard: the result rows [from, to) of its plan (from where an earlier attempt
 * stopped), every cell timestamped with the version, so that writing a row again writes the very
 * same cells. Claims the shard first (one worker at a time), saves its progress after each page,
 * and marks it done once every cell has landed; the worker landing a version's last shard makes
 * it the version readers use. A Bigtable or BigQuery failure throws BackendUnavailableError.
 */
export async function runShard(task: ShardTask): Promise<ShardOutcome> {
  const { table, shard, workerId, signal } = task;
  const state = await readPlan(table, signal);
  if (state?.plan.id !== task.planId || shard >= state.plan.shards) return { outcome: 'stale' };
  const { plan } = state;
  if (state.shards.get(shard)?.done) return { outcome: 'already_done' };
  const lease = task.limits.claimLeaseMs;
  if (!(await claimShard(table, plan.id, shard, workerId, lease, task.now(), signal))) {
    return { outcome: 'busy' };
  }
  let held = true;
  try {
    // Read again under the claim: a worker that landed the shard meanwhile marked it done
    // before giving its claim up, and its progress is the latest.
    const claimed = await readPlan(table, signal);
    if (claimed?.plan.id !== plan.id) return { outcome: 'stale' };
    const before = claimed.shards.get(shard);
    if (before?.done) return { outcome: 'already_done' };
    const { from, to } = shardRange(plan, shard);
    const counts = new ShardCounts(before?.progress?.stats);
    const started = performance.now();
    let offset = Math.max(from, before?.progress?.offset ?? from);
    if (offset < to && !task.stop.aborted) {
      const writer = new BatchWriter(table, task.limits, signal, counts.entries);
      for await (const page of task.source.pages(plan.result, offset, to, signal)) {
        for (const row of page.rows) await writeRow(row, plan, task, writer, counts);
        await writer.flush();
        offset = page.offset + page.rows.length;
        counts.entries = writer.sent;
        const stats = counts.stats(performance.now() - started);
        await saveProgress(table, plan.id, shard, { offset, stats }, signal);
        if (!(await renewClaim(table, plan.id, shard, workerId, task.now(), signal))) {
          held = false;
          return { outcome: 'busy' };
        }
        if (task.stop.aborted) break;
      }
    }
    if (offset < to) return { outcome: 'stopped', offset };
    const stats = counts.stats(performance.now() - started);
    await markDone(table, plan.id, shard, stats, signal);
    return {
      outcome: 'done',
      stats,
      completed: await completeIfLanded(table, plan, task.now(), signal),
    };
  } finally {
    if (held && !signal.aborted) {
      await releaseClaim(table, plan.id, shard, workerId, signal).catch(() => undefined);
    }
  }
}

/**
 * Makes the plan's version the one readers use if every shard has landed (whoever lands the last
 * one, or the coordinator finding it so), then removes the plan. Idempotent: two callers write
 * the same version.
 */
export async function completeIfLanded(
  table: Table,
  plan: SyncPlan,
  now: number,
  signal: AbortSignal,
): Promise<VersionRecord | undefined> {
  const state = await readPlan(table, signal);
  if (state?.plan.id !== plan.id || pendingShards(state).length > 0) return undefined;
  const record = versionRecord(state, now);
  await writeVersion(table, record, signal);
  await deletePlan(table, plan.id, signal);
  return record;
}

/** The version a finished plan makes current. */
function versionRecord(state: PlanState, now: number): VersionRecord {
  const { plan } = state;
  const totals = totalStats(state);
  return {
    partition: plan.partition,
    version: plan.version,
    syncedAt: new Date(now).toISOString(),
    windowDays: plan.windowDays,
    rows: plan.rows,
    persons: totals.persons,
    ids: totals.ids,
    expiresAt: versionExpiry(plan.version, plan.windowDays, plan.lookbackDays).toISOString(),
  };
}

/** What the landed shards of a plan wrote, together. */
export function totalStats(state: PlanState): Omit<ShardStats, 'durationMs'> {
  const skipped = new Map<string, number>();
  let persons = 0;
  let ids = 0;
  let entries = 0;
  for (const { done } of state.shards.values()) {
    if (!done) continue;
    persons += done.persons;
    ids += done.ids;
    entries += done.entries;
    for (const [reason, n] of Object.entries(done.skippedByReason)) {
      skipped.set(reason, (skipped.get(reason) ?? 0) + n);
    }
  }
  return { persons, ids, entries, skippedByReason: Object.fromEntries(skipped) };
}

type Entry = { key: string; data: Record<string, Record<string, unknown>> };

/**
 * The cells of one result row: per valid id, its id row (the person key); and the person's row,
 * its id count and one column per member, in entries of at most `cellsPerEntry` cells. Ids are
 * checked and normalised as snapshot mode does (an id the registry refuses is skipped; one
 * repeated after normalisation counts once); a person left without ids is left out, as there.
 */
async function writeRow(
  row: VersionRow,
  plan: SyncPlan,
  task: ShardTask,
  writer: BatchWriter,
  counts: ShardCounts,
): Promise<void> {
  if (row.kind === 'dropped') {
    counts.skip(row.reason, row.rows);
    return;
  }
  const members = new Map<string, { id: string; type: string }>();
  for (const { id, type } of row.ids) {
    const checked = checkMappingId(task.registry, id, type);
    if ('reason' in checked) {
      counts.skip(checked.reason, 1);
      continue;
    }
    const qualifier = memberQualifier(checked.id, type);
    if (!members.has(qualifier)) members.set(qualifier, { id: checked.id, type });
  }
  if (members.size === 0) return;
  counts.persons++;
  counts.ids += members.size;
  const timestamp = new Date(plan.version);
  for (const { id, type } of members.values()) {
    await writer.add({
      key: idRowKey(type, id),
      data: { [LINKS_FAMILY]: { [PERSON_QUALIFIER]: { value: row.person, timestamp } } },
    });
  }
  const key = personRowKey(row.person);
  // A plain object (the client skips null-prototype ones); every key holds a `\0`, so none can
  // be `__proto__`.
  let cells: Record<string, unknown> = {
    [COUNT_QUALIFIER]: { value: String(members.size), timestamp },
  };
  let n = 1;
  for (const qualifier of members.keys()) {
    if (n >= task.limits.cellsPerEntry) {
      await writer.add({ key, data: { [LINKS_FAMILY]: cells } });
      cells = {};
      n = 0;
    }
    cells[qualifier] = { value: MEMBER, timestamp };
    n++;
  }
  await writer.add({ key, data: { [LINKS_FAMILY]: cells } });
}

/** A shard's running totals (carried over from an earlier attempt's progress). */
class ShardCounts {
  persons: number;
  ids: number;
  entries: number;
  private readonly skipped: Map<string, number>;
  private readonly earlierMs: number;

  constructor(earlier: ShardStats | undefined) {
    this.persons = earlier?.persons ?? 0;
    this.ids = earlier?.ids ?? 0;
    this.entries = earlier?.entries ?? 0;
    this.skipped = new Map(Object.entries(earlier?.skippedByReason ?? {}));
    this.earlierMs = earlier?.durationMs ?? 0;
  }

  skip(reason: string, n: number): void {
    this.skipped.set(reason, (this.skipped.get(reason) ?? 0) + n);
  }

  stats(ms: number): ShardStats {
    return {
      persons: this.persons,
      ids: this.ids,
      entries: this.entries,
      skippedByReason: Object.fromEntries(this.skipped),
      durationMs: Math.round(this.earlierMs + ms),
    };
  }
}

/** Batches entries into MutateRows calls, at most `maxInFlight` at once. */
class BatchWriter {
  private written = 0;
  private readonly base: number;
  private batch: Entry[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    private readonly table: Table,
    private readonly limits: SyncLimits,
    private readonly signal: AbortSignal,
    earlierEntries = 0,
  ) {
    this.base = earlierEntries;
  }

  /** Entries sent so far (this attempt and the earlier ones). */
  get sent(): number {
    return this.base + this.written;
  }

  async add(entry: Entry): Promise<void> {
    this.batch.push(entry);
    if (this.batch.length >= this.limits.batchEntries) await this.send();
  }

  /** Sends what is batched and waits until every call has landed. */
  async flush(): Promise<void> {
    if (this.batch.length > 0) await this.send();
    await untilAborted(Promise.all(this.inFlight), this.signal);
    this.check();
  }

  private async send(): Promise<void> {
    this.check();
    const entries = this.batch;
    this.batch = [];
    this.written += entries.length;
    // insert() is MutateRows of SetCell mutations; cells with explicit timestamps make a retry
    // (the client's, or another attempt's) write the same cells again.
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
