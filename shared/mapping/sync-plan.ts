import { randomBytes } from 'node:crypto';
import type { Table } from '@google-cloud/bigtable';
import { untilAborted } from '../deadline.js';
import { BackendUnavailableError } from '../errors.js';
import type { ResultRef } from './bigquery-version-source.js';
import {
  FIRST_SYNC_QUALIFIER,
  type FirstSyncNote,
  META_FAMILY,
  META_ROW,
  VERSION_QUALIFIER,
  type VersionRecord,
} from './bigtable-layout.js';

/** The row holding the version being written: its plan and each shard's progress. */
export const SYNC_ROW = '_sync';
const PLAN_QUALIFIER = 'plan';
/** The plan's id alone, so that a conditional mutation can match it exactly. */
const PLAN_ID_QUALIFIER = 'plan_id';
/** Every Bigtable call of the sync's bookkeeping is bounded by this. */
const CALL_TIMEOUT_MS = 30_000;

/**
 * One version being written: the window ending at `partition`, read by ONE BigQuery query whose
 * result rows (one per person, in a total order) are split into shards of `shardRows` rows by
 * position. Every cell of a version is determined by exactly one result row (its person's), so
 * any split writes every cell exactly once, and shards never share a person.
 */
export interface SyncPlan {
  /** Random, per plan: shard cells and messages carry it, so that nothing of an older plan counts. */
  readonly id: string;
  readonly partition: string;
  /** The cell timestamp of this version (see nextVersionTime). */
  readonly version: number;
  readonly windowDays: number;
  readonly lookbackDays: number;
  /** Where the query's rows are (kept by BigQuery for about a day). */
  readonly result: ResultRef;
  readonly rows: number;
  readonly shardRows: number;
  readonly shards: number;
  readonly createdAt: string;
}

/** What one shard wrote. */
export interface ShardStats {
  readonly persons: number;
  readonly ids: number;
  /** Row mutations sent (id rows, person row entries). */
  readonly entries: number;
  readonly skippedByReason: Readonly<Record<string, number>>;
  readonly durationMs: number;
}

/** How far a shard got: rows before `offset` have landed, with what they wrote. */
export interface ShardProgress {
  readonly offset: number;
  readonly stats: ShardStats;
}

/** A failed attempt at a shard, as the worker (or the dead-letter drain) recorded it. */
export interface ShardFailure {
  /** Delivery attempts so far (Pub/Sub's count where known, else the workers' own). */
  readonly attempts: number;
  readonly error: string;
  readonly at: string;
  /** Pub/Sub gave up on it and sent it to the dead-letter topic. */
  readonly deadLettered?: boolean;
}

/** A shard's durable state. */
export interface ShardState {
  readonly done?: ShardStats;
  readonly progress?: ShardProgress;
  readonly failure?: ShardFailure;
  /** When it was last published to the queue (ISO 8601). */
  readonly sentAt?: string;
}

/** The plan in progress with its shards' states. */
export interface PlanState {
  readonly plan: SyncPlan;
  readonly shards: ReadonlyMap<number, ShardState>;
}

/** The rows [from, to) of shard `shard`. */
export function shardRange(plan: SyncPlan, shard: number): { from: number; to: number } {
  const from = shard * plan.shardRows;
  return { from, to: Math.min(plan.rows, from + plan.shardRows) };
}

/** A new random plan id. */
export function newPlanId(): string {
  return randomBytes(8).toString('hex');
}

/** The shards of a plan that have not landed yet, in order. */
export function pendingShards(state: PlanState): number[] {
  const pending: number[] = [];
  for (let k = 0; k < state.plan.shards; k++) {
    if (!state.shards.get(k)?.done) pending.push(k);
  }
  return pending;
}

const column = (planId: string, kind: string, shard: number) => `${planId}#${kind}#${shard}`;

/** Reads the plan in progress and its shards' states (undefined: none). */
export async function readPlan(table: Table, signal?: AbortSignal): Promise<PlanState | undefined> {
  const cells = await readMetaRow(table, SYNC_ROW, signal);
  const plan = parsePlan(cells.get(PLAN_QUALIFIER));
  if (!plan || cells.get(PLAN_ID_QUALIFIER) !== plan.id) return undefined;
  const shards = new Map<number, ShardState>();
  const prefix = `${plan.id}#`;
  for (const [qualifier, value] of cells) {
    if (!qualifier.startsWith(prefix)) continue; // an older plan's late write
    const [kind, index] = qualifier.slice(prefix.length).split('#');
    const shard = Number(index);
    if (!Number.isInteger(shard) || shard < 0 || shard >= plan.shards) continue;
    const state: Record<string, unknown> = { ...shards.get(shard) };
    if (kind === 'done') state.done = parseJson(value);
    else if (kind === 'progress') state.progress = parseJson(value);
    else if (kind === 'fail') state.failure = parseJson(value);
    else if (kind === 'sent') state.sentAt = value;
    else continue;
    shards.set(shard, state as ShardState);
  }
  return { plan, shards };
}

/** Replaces whatever plan the table holds with `plan` (no shard done yet). */
export async function writePlan(table: Table, plan: SyncPlan, signal: AbortSignal): Promise<void> {
  await call(
    table.mutate({ key: SYNC_ROW, method: 'delete' }, { gaxOptions: { timeout: CALL_TIMEOUT_MS } }),
    'clearing the previous sync plan',
    signal,
  );
  await setCells(
    table,
    { [PLAN_QUALIFIER]: JSON.stringify(plan), [PLAN_ID_QUALIFIER]: plan.id },
    'writing the sync plan',
    signal,
  );
}

/** Deletes the plan row if it still holds plan `planId` (a newer plan is never touched). */
export async function deletePlan(table: Table, planId: string, signal: AbortSignal): Promise<void> {
  await call(
    table.row(SYNC_ROW).filter(exactCell(PLAN_ID_QUALIFIER, planId), {
      onMatch: [{ method: 'delete' }],
      gaxOptions: { timeout: CALL_TIMEOUT_MS },
    }),
    'deleting the sync plan',
    signal,
  );
}

/** Records how far a shard got (rows before `progress.offset` have landed). */
export function saveProgress(
  table: Table,
  planId: string,
  shard: number,
  progress: ShardProgress,
  signal: AbortSignal,
): Promise<void> {
  return setCells(
    table,
    { [column(planId, 'progress', shard)]: JSON.stringify(progress) },
    'saving shard progress',
    signal,
  );
}

/** Records a shard as landed, with what it wrote. */
export function markDone(
  table: Table,
  planId: string,
  shard: number,
  stats: ShardStats,
  signal: AbortSignal,
): Promise<void> {
  return setCells(
    table,
    { [column(planId, 'done', shard)]: JSON.stringify(stats) },
    'marking a shard done',
    signal,
  );
}

/** Records a failed attempt at a shard (the operator's record: /health and the sync's summary). */
export function recordFailure(
  table: Table,
  planId: string,
  shard: number,
  failure: ShardFailure,
  signal: AbortSignal,
): Promise<void> {
  return setCells(
    table,
    { [column(planId, 'fail', shard)]: JSON.stringify(failure) },
    'recording a shard failure',
    signal,
  );
}

/** Records that shards were published to the queue at `at`. */
export function markSent(
  table: Table,
  planId: string,
  shards: readonly number[],
  at: string,
  signal: AbortSignal,
): Promise<void> {
  if (shards.length === 0) return Promise.resolve();
  const cells: Record<string, string> = {};
  for (const shard of shards) cells[column(planId, 'sent', shard)] = at;
  return setCells(table, cells, 'recording dispatched shards', signal);
}

/**
 * Claims a shard for `workerId` until `now + leaseMs`, atomically (CheckAndMutateRow): false when
 * a claim younger than the lease exists (another worker's; a worker releases its own when it stops).
 */
export async function claimShard(
  table: Table,
  planId: string,
  shard: number,
  workerId: string,
  leaseMs: number,
  now: number,
  signal: AbortSignal,
): Promise<boolean> {
  const qualifier = column(planId, 'claim', shard);
  const live = [
    { family: META_FAMILY },
    { column: Buffer.from(qualifier) },
    { time: { start: new Date(now - leaseMs) } },
  ];
  const [matched] = await call(
    table.row(SYNC_ROW).filter(live, {
      onNoMatch: [claimCell(qualifier, workerId, now)],
      gaxOptions: { timeout: CALL_TIMEOUT_MS },
    }),
    'claiming a shard',
    signal,
  );
  return !matched;
}

/**
 * Extends `workerId`'s claim to `now + leaseMs`; false when the claim is no longer its own (it
 * lapsed and another worker took the shard: stop writing it).
 */
export async function renewClaim(
  table: Table,
  planId: string,
  shard: number,
  workerId: string,
  now: number,
  signal: AbortSignal,
): Promise<boolean> {
  const qualifier = column(planId, 'claim', shard);
  const [matched] = await call(
    table.row(SYNC_ROW).filter(exactCell(qualifier, workerId), {
      onMatch: [claimCell(qualifier, workerId, now)],
      gaxOptions: { timeout: CALL_TIMEOUT_MS },
    }),
    'renewing a shard claim',
    signal,
  );
  return matched === true;
}

function claimCell(qualifier: string, workerId: string, now: number) {
  return {
    method: 'insert',
    data: { [META_FAMILY]: { [qualifier]: { value: workerId, timestamp: new Date(now) } } },
  };
}

/** Gives a claim up (a clean stop), so that the next worker need not wait for the lease. */
export async function releaseClaim(
  table: Table,
  planId: string,
  shard: number,
  workerId: string,
  signal: AbortSignal,
): Promise<void> {
  const qualifier = column(planId, 'claim', shard);
  await call(
    table.row(SYNC_ROW).filter(exactCell(qualifier, workerId), {
      onMatch: [{ method: 'delete', data: [`${META_FAMILY}:${qualifier}`] }],
      gaxOptions: { timeout: CALL_TIMEOUT_MS },
    }),
    'releasing a shard claim',
    signal,
  );
}

/**
 * Makes `record` the version readers use. Its cell carries the version's timestamp: of two
 * writers, the newer version wins whatever the order (the family keeps one version).
 */
export function writeVersion(
  table: Table,
  record: VersionRecord,
  signal: AbortSignal,
): Promise<void> {
  return setCells(
    table,
    { [VERSION_QUALIFIER]: JSON.stringify(record) },
    'writing the mapping version',
    signal,
    META_ROW,
    new Date(record.version),
  );
}

/**
 * Records why a first sync found nothing to write, for the profile function's /health. The cell
 * is timestamped with the run's time, so the newest note is the last run's.
 */
export function writeFirstSyncNote(
  table: Table,
  note: FirstSyncNote,
  signal: AbortSignal,
): Promise<void> {
  return setCells(
    table,
    { [FIRST_SYNC_QUALIFIER]: JSON.stringify(note) },
    'writing the first sync note',
    signal,
    META_ROW,
    new Date(note.checkedAt),
  );
}

/** The newest cell of each `m` column of a row, by qualifier. */
export async function readMetaRow(
  table: Table,
  key: string,
  signal?: AbortSignal,
): Promise<Map<string, string>> {
  const read = table.getRows({
    keys: [key],
    filter: [{ family: META_FAMILY }, { column: { cellLimit: 1 } }],
    gaxOptions: { timeout: CALL_TIMEOUT_MS },
  });
  const [rows] = await call(read, `reading ${key}`, signal);
  const family = (rows[0]?.data?.[META_FAMILY] ?? {}) as Record<string, { value: unknown }[]>;
  const cells = new Map<string, string>();
  for (const [qualifier, versions] of Object.entries(family)) {
    const value = versions[0]?.value;
    if (typeof value === 'string') cells.set(qualifier, value);
  }
  return cells;
}

/** A filter matching cell `qualifier` of the `m` family whose value is exactly `value`. */
function exactCell(qualifier: string, value: string) {
  return [
    { family: META_FAMILY },
    { column: Buffer.from(qualifier) },
    { column: { cellLimit: 1 } },
    { value: Buffer.from(value) },
  ];
}

async function setCells(
  table: Table,
  cells: Record<string, string>,
  what: string,
  signal: AbortSignal,
  key = SYNC_ROW,
  timestamp = new Date(),
): Promise<void> {
  const data: Record<string, { value: string; timestamp: Date }> = {};
  for (const [qualifier, value] of Object.entries(cells)) data[qualifier] = { value, timestamp };
  await call(
    table.insert([{ key, data: { [META_FAMILY]: data } }], { timeout: CALL_TIMEOUT_MS }),
    what,
    signal,
  );
}

/** One bookkeeping call: a failure is BackendUnavailableError('bigtable'), an abort its reason. */
async function call<T>(work: Promise<T>, what: string, signal?: AbortSignal): Promise<T> {
  try {
    return await (signal ? untilAborted(work, signal) : work);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new BackendUnavailableError('bigtable', `${what} failed`, { cause: err });
  }
}

function parseJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

function parsePlan(value: string | undefined): SyncPlan | undefined {
  const plan = value === undefined ? undefined : (parseJson(value) as SyncPlan | undefined);
  if (
    typeof plan !== 'object' ||
    plan === null ||
    typeof plan.id !== 'string' ||
    typeof plan.partition !== 'string' ||
    !Number.isInteger(plan.version) ||
    !Number.isInteger(plan.shards) ||
    !Number.isInteger(plan.shardRows) ||
    !Number.isInteger(plan.rows) ||
    typeof plan.result?.jobId !== 'string'
  ) {
    return undefined;
  }
  return plan;
}
