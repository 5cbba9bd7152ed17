import type { Bigtable, Row, Table } from '@google-cloud/bigtable';
import { untilAborted, withDeadline } from '../deadline.js';
import { BackendUnavailableError, ProfileApiError } from '../errors.js';
import type { TypedId } from '../id-types.js';
import { RefreshingCache } from '../refreshing-cache.js';
import {
  CHECKPOINT_QUALIFIER,
  DAY_MS,
  FIRST_SYNC_QUALIFIER,
  type FirstSyncNote,
  idRowKey,
  LINKS_FAMILY,
  META_FAMILY,
  META_ROW,
  PERSON_QUALIFIER,
  parseMemberQualifier,
  partitionTime,
  personRowKey,
  windowFilter,
} from './bigtable-layout.js';
import type { LinkedId } from './mapping-index.js';
import type { MappingAnswer, MappingHealth, MappingMatch, MappingStore } from './mapping-store.js';

/** Where the mapping table is and how the profile function reads it. */
export interface BigtableTableOptions {
  readonly projectId: string;
  readonly instanceId: string;
  readonly tableId: string;
  /** Routes reads (and the sync's writes) through an app profile; unset: the default one. */
  readonly appProfileId?: string | undefined;
}

/** Reading options of the profile function's store. */
export interface BigtableMappingOptions extends BigtableTableOptions {
  /** The window: the partitions `checkpoint - (windowDays - 1)` .. `checkpoint`. */
  readonly windowDays: number;
  /** How often the checkpoint (the mapping version) is read again, in the background. */
  readonly refreshIntervalMs: number;
  readonly retryMaxMs: number;
  /** Health calls the mapping stale when its last partition ended longer ago than this. */
  readonly maxStalenessSecs: number;
  readonly now?: () => number;
}

/** The sync checkpoint as the profile function sees it. */
interface Checkpoint {
  readonly partition: string;
}

/** A synced-nothing table: not an outage, but nothing to answer from either. */
export class NothingSyncedError extends ProfileApiError {}

const HEALTH_TIMEOUT_MS = 1_000;

/**
 * Opens the mapping table with the official client (BIGTABLE_EMULATOR_HOST honoured). The
 * client is loaded on first use: snapshot-mode instances never pay for it at start-up.
 */
export async function openMappingTable(
  options: BigtableTableOptions,
  client?: Bigtable,
): Promise<Table> {
  const bigtable =
    client ??
    new (await import('@google-cloud/bigtable')).Bigtable({
      projectId: options.projectId,
      // Client-side metrics export to Cloud Monitoring: a permission the service accounts do
      // not have, and a cost; request timings are in our own logs (server-timing phases).
      metricsEnabled: false,
      ...(options.appProfileId ? { appProfileId: options.appProfileId } : {}),
    });
  return bigtable.instance(options.instanceId).table(options.tableId);
}

/** The sync's state in the meta row (see writeCheckpoint and writeFirstSyncNote). */
export interface SyncState {
  /** The last fully synced partition; undefined when nothing was synced yet. */
  readonly checkpoint: string | undefined;
  /** Why the last first sync found nothing to write, if it did. */
  readonly firstSync: FirstSyncNote | undefined;
}

/**
 * Reads the sync's state: one single-row read. A failure is BackendUnavailableError('bigtable');
 * `signal` abandons the read.
 */
export async function readSyncState(
  table: Table,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<SyncState> {
  const read = table.getRows({
    keys: [META_ROW],
    filter: [{ family: META_FAMILY }, { column: { cellLimit: 1 } }],
    gaxOptions: { timeout: timeoutMs },
  });
  let rows: Row[];
  try {
    [rows] = await (signal ? untilAborted(read, signal) : read);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new BackendUnavailableError('bigtable', 'reading the sync checkpoint failed', {
      cause: err,
    });
  }
  const meta = rows[0]?.data?.[META_FAMILY] as Record<string, { value: unknown }[]> | undefined;
  const checkpoint = meta?.[CHECKPOINT_QUALIFIER]?.[0]?.value;
  return {
    checkpoint: typeof checkpoint === 'string' && checkpoint !== '' ? checkpoint : undefined,
    firstSync: parseFirstSyncNote(meta?.[FIRST_SYNC_QUALIFIER]?.[0]?.value),
  };
}

/** The last fully synced partition, or undefined when nothing was synced yet (see readSyncState). */
export async function readCheckpoint(
  table: Table,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<string | undefined> {
  return (await readSyncState(table, timeoutMs, signal)).checkpoint;
}

/** A first sync note as the sync wrote it, or undefined for anything else (never trusted blindly). */
function parseFirstSyncNote(value: unknown): FirstSyncNote | undefined {
  if (typeof value !== 'string') return undefined;
  let note: unknown;
  try {
    note = JSON.parse(value);
  } catch {
    return undefined;
  }
  const n = note as Record<string, unknown> | null;
  const text = (v: unknown) => typeof v === 'string';
  const textOrNull = (v: unknown) => v === null || typeof v === 'string';
  if (
    typeof n !== 'object' ||
    n === null ||
    !text(n.checkedAt) ||
    !text(n.earliestAccepted) ||
    !textOrNull(n.newestPartition) ||
    !textOrNull(n.excludedBy) ||
    !text(n.reason)
  ) {
    return undefined;
  }
  const { checkedAt, earliestAccepted, newestPartition, excludedBy, reason } =
    n as unknown as FirstSyncNote;
  return { checkedAt, earliestAccepted, newestPartition, excludedBy, reason };
}

/**
 * The mapping in Bigtable (layout: bigtable-layout.ts). A lookup is at most two reads: the id
 * rows of the request's candidate types in one multi-row read, then the person row of the first
 * one found. The checkpoint (the version answers carry) is read in the background, like a
 * snapshot, never on a request's path after the first.
 */
export class BigtableMappingStore implements MappingStore {
  readonly kind = 'bigtable';
  private readonly checkpoint: RefreshingCache<Checkpoint>;
  private readonly now: () => number;
  private table: Promise<Table> | undefined;

  constructor(
    private readonly options: BigtableMappingOptions,
    table?: Table,
  ) {
    this.table = table && Promise.resolve(table);
    this.now = options.now ?? Date.now;
    this.checkpoint = new RefreshingCache<Checkpoint>(
      async (current) => {
        const { checkpoint: partition, firstSync } = await this.read(
          (t) => readSyncState(t, options.refreshIntervalMs),
          options.refreshIntervalMs,
        );
        if (partition === undefined) {
          throw new NothingSyncedError(
            `nothing has been synced to ${this.tableName} yet` +
              (firstSync ? `; the first sync (${firstSync.checkedAt}): ${firstSync.reason}` : ''),
          );
        }
        return current?.partition === partition ? undefined : { partition };
      },
      {
        refreshIntervalMs: options.refreshIntervalMs,
        retryMinMs: Math.min(1_000, options.retryMaxMs),
        retryMaxMs: options.retryMaxMs,
        now: this.now,
      },
    );
  }

  version(): string | undefined {
    return this.checkpoint.peek()?.partition;
  }

  async ready(timeoutMs: number): Promise<void> {
    await this.checkpoint.getWithin(
      timeoutMs,
      () => new BackendUnavailableError('bigtable', 'reading the sync checkpoint timed out'),
    );
  }

  async find(
    requests: readonly (readonly TypedId[])[],
    maxLinked: number,
    timeoutMs: number,
  ): Promise<MappingAnswer> {
    const checkpoint = this.checkpoint.peek();
    if (!checkpoint) throw new BackendUnavailableError('bigtable', 'mapping not ready');
    const last = checkpoint.partition;
    const { windowDays } = this.options;
    const started = performance.now();
    // Read 1: the id rows of every candidate of every request, in one multi-row read.
    const keysOf = requests.map((candidates) => candidates.map((c) => idRowKey(c.type.code, c.id)));
    const idRows = await this.read(
      (t) =>
        t.getRows({
          keys: [...new Set(keysOf.flat())],
          filter: windowFilter(last, windowDays, false),
          gaxOptions: { timeout: timeoutMs },
        }),
      timeoutMs,
    );
    const persons = new Map<string, string>();
    for (const row of idRows[0]) {
      const value = row.data?.[LINKS_FAMILY]?.[PERSON_QUALIFIER]?.[0]?.value;
      if (typeof value === 'string') persons.set(row.id, value);
    }
    const found = keysOf.map((keys) => keys.findIndex((key) => persons.has(key)));
    // Each request's person row: its first candidate found's person (undefined: none found).
    const personOf = found.map((candidate, r) =>
      candidate < 0
        ? undefined
        : personRowKey(persons.get(keysOf[r]?.[candidate] as string) as string),
    );
    const personKeys = personOf.filter((key) => key !== undefined);
    if (personKeys.length === 0) return { version: last, matches: requests.map(() => undefined) };

    // Read 2: the person rows of every request the mapping knows, in one multi-row read.
    const left = Math.max(1, timeoutMs - (performance.now() - started));
    const personRows = await this.read(
      (t) =>
        t.getRows({
          keys: [...new Set(personKeys)],
          filter: windowFilter(last, windowDays, true),
          gaxOptions: { timeout: left },
        }),
      left,
    );
    const members = new Map<string, string[]>();
    for (const row of personRows[0]) {
      // Sorted here too: the client hands columns over as object keys.
      members.set(row.id, Object.keys(row.data?.[LINKS_FAMILY] ?? {}).sort(compareBytes));
    }
    const matches = requests.map((candidates, r): MappingMatch | undefined => {
      const candidate = found[r] as number;
      if (candidate < 0) return undefined;
      const requested = candidates[candidate] as TypedId;
      const person = personOf[r] as string;
      const linked: LinkedId[] = [];
      let linkedTotal = 0;
      for (const qualifier of members.get(person) ?? []) {
        const member = parseMemberQualifier(qualifier);
        if (!member || (member.id === requested.id && member.typeCode === requested.type.code)) {
          continue;
        }
        linkedTotal++;
        if (linked.length < maxLinked) linked.push(member);
      }
      return { candidate, linked, linkedTotal };
    });
    return { version: last, matches };
  }

  async health(now: number): Promise<MappingHealth> {
    // An instance whose first checkpoint read failed (nothing synced yet, Bigtable down) retries
    // it when health is asked too, not only on a request (within its back-off).
    if (this.version() === undefined) this.warmUp();
    const started = performance.now();
    let reachable = true;
    let lastError: string | null = null;
    let partition: string | undefined;
    let firstSync: FirstSyncNote | undefined;
    try {
      ({ checkpoint: partition, firstSync } = await this.read(
        (t) => readSyncState(t, HEALTH_TIMEOUT_MS),
        HEALTH_TIMEOUT_MS,
      ));
    } catch (err) {
      reachable = false;
      lastError = err instanceof Error ? err.name : 'Error';
    }
    const latencyMs = reachable ? Math.round((performance.now() - started) * 100) / 100 : null;
    const synced = partition ?? this.version();
    // A partition is complete at the end of its day: its age counts from then.
    const ageSecs = synced
      ? Math.max(0, Math.round((now - partitionTime(synced).getTime() - DAY_MS) / 1000))
      : null;
    const stale = ageSecs !== null && ageSecs > this.options.maxStalenessSecs;
    if (partition === undefined && reachable) lastError = 'NothingSyncedError';
    return {
      ok: reachable && this.version() !== undefined,
      degraded: stale,
      detail: {
        table: this.tableName,
        reachable,
        latencyMs,
        lastSyncedPartition: synced ?? null,
        ageSecs,
        windowDays: this.options.windowDays,
        stale,
        lastError,
        // Nothing synced: what the first sync found (the newest partition, the setting that
        // left it out), so that the operator sees why without reading the sync's logs.
        firstSync: synced === undefined ? (firstSync ?? null) : null,
      },
    };
  }

  warmUp(): void {
    this.checkpoint.warmUp();
  }

  async close(): Promise<void> {
    const table = await this.table?.catch(() => undefined);
    await table?.bigtable.close().catch(() => undefined);
  }

  private get tableName(): string {
    const { projectId, instanceId, tableId } = this.options;
    return `projects/${projectId}/instances/${instanceId}/tables/${tableId}`;
  }

  /** One bounded call: any failure or timeout is BackendUnavailableError('bigtable'). */
  private async read<T>(call: (table: Table) => Promise<T>, timeoutMs: number): Promise<T> {
    this.table ??= openMappingTable(this.options).then((table) => {
      // Our own deadline answers the request; the client's stream retries would outlive it.
      table.maxRetries = 0;
      return table;
    });
    try {
      return await withDeadline(
        this.table.then(call),
        timeoutMs,
        () => new BackendUnavailableError('bigtable', `no answer within ${timeoutMs} ms`),
      );
    } catch (err) {
      if (err instanceof BackendUnavailableError) throw err;
      throw new BackendUnavailableError('bigtable', 'read failed', { cause: err });
    }
  }
}

function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
