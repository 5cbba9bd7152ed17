import type { Bigtable, Row, Table } from '@google-cloud/bigtable';
import { untilAborted, withDeadline } from '../deadline.js';
import { BackendUnavailableError, ProfileApiError } from '../errors.js';
import type { TypedId } from '../id-types.js';
import {
  COUNT_QUALIFIER,
  DAY_MS,
  FIRST_SYNC_QUALIFIER,
  type FirstSyncNote,
  idRowKey,
  LEGACY_CHECKPOINT_QUALIFIER,
  LINKS_FAMILY,
  META_FAMILY,
  META_ROW,
  PERSON_QUALIFIER,
  parseMemberQualifier,
  partitionTime,
  personFilter,
  personRowKey,
  VERSION_LEASE_MS,
  VERSION_QUALIFIER,
  type VersionRecord,
  versionFilter,
} from './bigtable-layout.js';
import type { LinkedId } from './mapping-index.js';
import type { MappingAnswer, MappingHealth, MappingMatch, MappingStore } from './mapping-store.js';
import { readPlan } from './sync-plan.js';

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
  /** MAPPING_WINDOW_DAYS as this function was told it (health shows it beside the version's). */
  readonly windowDays: number;
  /** How often the version is read again, in the background (at least every half lease). */
  readonly refreshIntervalMs: number;
  readonly retryMaxMs: number;
  /** Health calls the mapping stale when its last partition ended longer ago than this. */
  readonly maxStalenessSecs: number;
  readonly now?: () => number;
}

/** A synced-nothing table: not an outage, but nothing to answer from either. */
export class NothingSyncedError extends ProfileApiError {}

/** The version is older than the table's GC rule keeps: its cells may be partly gone. */
export class VersionExpiredError extends ProfileApiError {}

const HEALTH_TIMEOUT_MS = 1_000;
/** The longest a version read may take. */
const VERSION_READ_TIMEOUT_MS = 10_000;

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

/** The sync's state in the meta row. */
export interface SyncState {
  /** The version readers use; undefined when nothing was synced yet. */
  readonly version: VersionRecord | undefined;
  /** The last partition a sync before versions wrote (such a table needs a sync to be read). */
  readonly legacyCheckpoint: string | undefined;
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
    throw new BackendUnavailableError('bigtable', 'reading the mapping version failed', {
      cause: err,
    });
  }
  const meta = rows[0]?.data?.[META_FAMILY] as Record<string, { value: unknown }[]> | undefined;
  const legacy = meta?.[LEGACY_CHECKPOINT_QUALIFIER]?.[0]?.value;
  return {
    version: parseVersion(meta?.[VERSION_QUALIFIER]?.[0]?.value),
    legacyCheckpoint: typeof legacy === 'string' && legacy !== '' ? legacy : undefined,
    firstSync: parseFirstSyncNote(meta?.[FIRST_SYNC_QUALIFIER]?.[0]?.value),
  };
}

/** The version readers use, or undefined when nothing was synced yet (see readSyncState). */
export async function readVersion(
  table: Table,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<VersionRecord | undefined> {
  return (await readSyncState(table, timeoutMs, signal)).version;
}

/** A version record as the sync wrote it, or undefined for anything else. */
function parseVersion(value: unknown): VersionRecord | undefined {
  if (typeof value !== 'string') return undefined;
  let v: Partial<VersionRecord> | null;
  try {
    v = JSON.parse(value) as Partial<VersionRecord> | null;
  } catch {
    return undefined;
  }
  if (
    typeof v !== 'object' ||
    v === null ||
    typeof v.partition !== 'string' ||
    !Number.isSafeInteger(v.version) ||
    typeof v.syncedAt !== 'string' ||
    typeof v.expiresAt !== 'string' ||
    Number.isNaN(Date.parse(v.expiresAt))
  ) {
    return undefined;
  }
  return v as VersionRecord;
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
 * rows of the request's candidate types in one multi-row read, then the person rows found, each
 * read with a cell limit (its count and the first members), all of ONE version: the one the
 * answer reports. The version is read in the background, like a snapshot, and held for at most
 * VERSION_LEASE_MS without being read again (the sync relies on that bound); an instance idle
 * for longer reads it before its next lookup.
 */
export class BigtableMappingStore implements MappingStore {
  readonly kind = 'bigtable';
  private readonly now: () => number;
  private readonly refreshMs: number;
  private table: Promise<Table> | undefined;
  private current: { readonly record: VersionRecord; readonly confirmedAt: number } | undefined;
  private inflight: Promise<VersionRecord> | undefined;
  private failures = 0;
  private nextAttemptAt = 0;
  private lastError: unknown;

  constructor(
    private readonly options: BigtableMappingOptions,
    table?: Table,
  ) {
    this.table = table && Promise.resolve(table);
    this.now = options.now ?? Date.now;
    this.refreshMs = Math.min(options.refreshIntervalMs, VERSION_LEASE_MS / 2);
  }

  version(): string | undefined {
    return this.current?.record.partition;
  }

  async ready(timeoutMs: number): Promise<void> {
    await this.versionFor(timeoutMs);
  }

  async find(
    requests: readonly (readonly TypedId[])[],
    maxLinked: number,
    timeoutMs: number,
  ): Promise<MappingAnswer> {
    const started = performance.now();
    const record = await this.versionFor(timeoutMs);
    const { version, partition } = record;
    const left = () => Math.max(1, timeoutMs - (performance.now() - started));
    // Read 1: the id rows of every candidate of every request, in one multi-row read.
    const keysOf = requests.map((candidates) => candidates.map((c) => idRowKey(c.type.code, c.id)));
    const idRows = await this.read((t, ms) => {
      return t.getRows({
        keys: [...new Set(keysOf.flat())],
        filter: versionFilter(version),
        gaxOptions: { timeout: ms },
      });
    }, left());
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
    if (personKeys.length === 0)
      return { version: partition, matches: requests.map(() => undefined) };

    // Read 2: the person rows, each bounded: its count, then its first maxLinked + 1 members
    // (one of them may be the requested id).
    const personRows = await this.read((t, ms) => {
      return t.getRows({
        keys: [...new Set(personKeys)],
        filter: personFilter(version, maxLinked + 1),
        gaxOptions: { timeout: ms },
      });
    }, left());
    const people = new Map<string, { count: number | undefined; members: string[] }>();
    for (const row of personRows[0]) {
      const cells = (row.data?.[LINKS_FAMILY] ?? {}) as Record<string, { value: unknown }[]>;
      const count = Number(cells[COUNT_QUALIFIER]?.[0]?.value);
      const members = Object.keys(cells).filter((q) => q !== COUNT_QUALIFIER);
      // Sorted here too, by bytes as Bigtable sorts them: the client hands columns over as
      // object keys.
      members.sort(compareBytes);
      people.set(row.id, { count: Number.isSafeInteger(count) ? count : undefined, members });
    }
    const matches = requests.map((candidates, r): MappingMatch | undefined => {
      const candidate = found[r] as number;
      if (candidate < 0) return undefined;
      const requested = candidates[candidate] as TypedId;
      const person = people.get(personOf[r] as string);
      const linked: LinkedId[] = [];
      let listed = 0;
      for (const qualifier of person?.members ?? []) {
        const member = parseMemberQualifier(qualifier);
        if (!member || (member.id === requested.id && member.typeCode === requested.type.code)) {
          continue;
        }
        listed++;
        if (linked.length < maxLinked) linked.push(member);
      }
      // The count covers the requested id too.
      const linkedTotal = person?.count === undefined ? listed : Math.max(0, person.count - 1);
      return { candidate, linked, linkedTotal };
    });
    return { version: partition, matches };
  }

  async health(now: number): Promise<MappingHealth> {
    const started = performance.now();
    const confirmedAt = this.now();
    let reachable = true;
    let lastError: string | null = null;
    let state: SyncState | undefined;
    let progress: SyncProgress | null = null;
    try {
      [state, progress] = await this.read(
        (t, ms) => Promise.all([readSyncState(t, ms), readSyncProgress(t, ms)]),
        HEALTH_TIMEOUT_MS,
      );
    } catch (err) {
      reachable = false;
      lastError = err instanceof Error ? err.name : 'Error';
    }
    if (state?.version) {
      // A read like any other: it confirms (or moves) the version.
      if (!this.current || state.version.version >= this.current.record.version) {
        this.current = { record: state.version, confirmedAt };
      }
    } else if (this.current === undefined) {
      // An instance whose first read failed (nothing synced yet, Bigtable down) retries it when
      // health is asked too, not only on a request (within its back-off).
      this.warmUp();
    }
    const latencyMs = reachable ? Math.round((performance.now() - started) * 100) / 100 : null;
    const record = state?.version ?? this.current?.record;
    const synced = record?.partition;
    // A partition is complete at the end of its day: its age counts from then.
    const ageSecs = synced
      ? Math.max(0, Math.round((now - partitionTime(synced).getTime() - DAY_MS) / 1000))
      : null;
    const stale = ageSecs !== null && ageSecs > this.options.maxStalenessSecs;
    const expired = record !== undefined && now >= Date.parse(record.expiresAt);
    if (reachable && synced === undefined) lastError = 'NothingSyncedError';
    if (expired) lastError = 'VersionExpiredError';
    return {
      ok: reachable && this.version() !== undefined && !expired,
      degraded: stale || (progress?.failedShards.length ?? 0) > 0,
      detail: {
        table: this.tableName,
        reachable,
        latencyMs,
        lastSyncedPartition: synced ?? null,
        syncedAt: record?.syncedAt ?? null,
        ageSecs,
        windowDays: record?.windowDays ?? this.options.windowDays,
        ids: record?.ids ?? null,
        expiresAt: record?.expiresAt ?? null,
        stale,
        lastError,
        // The version being written, if any, and its shards that failed (the record an
        // operator looks for when the mapping stops advancing).
        syncInProgress: progress,
        // Nothing synced: what the first sync found (the newest partition, the setting that
        // left it out), so that the operator sees why without reading the sync's logs.
        firstSync: synced === undefined ? (state?.firstSync ?? null) : null,
        ...(synced === undefined && state?.legacyCheckpoint
          ? { legacyCheckpoint: state.legacyCheckpoint }
          : {}),
      },
    };
  }

  warmUp(): void {
    this.refresh().catch(() => undefined);
  }

  async close(): Promise<void> {
    const table = await this.table?.catch(() => undefined);
    await table?.bigtable.close().catch(() => undefined);
  }

  private get tableName(): string {
    const { projectId, instanceId, tableId } = this.options;
    return `projects/${projectId}/instances/${instanceId}/tables/${tableId}`;
  }

  /**
   * The version a lookup uses: the one held, while read again within the lease (a background
   * read starts every refresh interval); else a read now, within `timeoutMs`.
   */
  private async versionFor(timeoutMs: number): Promise<VersionRecord> {
    const now = this.now();
    const held = this.current;
    let record: VersionRecord;
    if (held && now - held.confirmedAt < VERSION_LEASE_MS) {
      if (now - held.confirmedAt >= this.refreshMs) this.warmUp();
      record = held.record;
    } else {
      record = await withDeadline(
        this.refresh(),
        timeoutMs,
        () => new BackendUnavailableError('bigtable', `no mapping version within ${timeoutMs} ms`),
      );
    }
    if (now >= Date.parse(record.expiresAt)) {
      throw new VersionExpiredError(
        `mapping version ${record.partition} expired at ${record.expiresAt} (the table's GC rule ` +
          'may have dropped its cells): no newer partition was synced; check syncMapping',
      );
    }
    return record;
  }

  /** Reads the version once (one read at a time; after a failure, not again within the back-off). */
  private refresh(): Promise<VersionRecord> {
    if (this.inflight) return this.inflight;
    const started = this.now();
    if (this.failures > 0 && started < this.nextAttemptAt) return Promise.reject(this.lastError);
    const run = async (): Promise<VersionRecord> => {
      try {
        const timeout = Math.min(this.options.refreshIntervalMs, VERSION_READ_TIMEOUT_MS);
        const state = await this.read((t, ms) => readSyncState(t, ms), timeout);
        if (!state.version) {
          throw new NothingSyncedError(
            `nothing has been synced to ${this.tableName} yet` +
              (state.firstSync
                ? `; the first sync (${state.firstSync.checkedAt}): ${state.firstSync.reason}`
                : '') +
              (state.legacyCheckpoint
                ? `; it holds partition ${state.legacyCheckpoint} as an earlier sync wrote it, ` +
                  'which this version cannot read: the next syncMapping run rewrites it'
                : ''),
          );
        }
        this.current = { record: state.version, confirmedAt: started };
        this.failures = 0;
        this.lastError = undefined;
        return state.version;
      } catch (err) {
        this.failures++;
        this.lastError = err;
        const backoff =
          Math.min(1_000, this.options.retryMaxMs) * 2 ** Math.min(this.failures - 1, 30);
        this.nextAttemptAt = this.now() + Math.min(backoff, this.options.retryMaxMs);
        throw err;
      } finally {
        this.inflight = undefined;
      }
    };
    // Deferred so that `inflight` is set before run() can reach its finally block.
    const promise = Promise.resolve().then(run);
    this.inflight = promise;
    return promise;
  }

  /** One bounded call: any failure or timeout is BackendUnavailableError('bigtable'). */
  private async read<T>(
    call: (table: Table, timeoutMs: number) => Promise<T>,
    timeoutMs: number,
  ): Promise<T> {
    this.table ??= openMappingTable(this.options).then((table) => {
      // Our own deadline answers the request; the client's stream retries would outlive it.
      table.maxRetries = 0;
      return table;
    });
    try {
      return await withDeadline(
        this.table.then((t) => call(t, timeoutMs)),
        timeoutMs,
        () => new BackendUnavailableError('bigtable', `no answer within ${timeoutMs} ms`),
      );
    } catch (err) {
      if (err instanceof ProfileApiError) throw err;
      throw new BackendUnavailableError('bigtable', 'read failed', { cause: err });
    }
  }
}

/** The version being written, as /health shows it. */
export interface SyncProgress {
  readonly partition: string;
  readonly shards: number;
  readonly done: number;
  readonly startedAt: string;
  /** Shards whose last attempt failed (at most 20 listed; `failedTotal` counts them all). */
  readonly failedShards: readonly {
    readonly shard: number;
    readonly attempts: number;
    readonly error: string;
    readonly at: string;
    readonly deadLettered: boolean;
  }[];
  readonly failedTotal: number;
}

const LISTED_FAILURES = 20;

/** The plan in progress, summed up (null: none). */
async function readSyncProgress(table: Table, timeoutMs: number): Promise<SyncProgress | null> {
  const state = await readPlan(table, AbortSignal.timeout(timeoutMs));
  if (!state) return null;
  const failed: SyncProgress['failedShards'][number][] = [];
  let done = 0;
  for (const [shard, s] of [...state.shards].sort((a, b) => a[0] - b[0])) {
    if (s.done) done++;
    else if (s.failure) {
      failed.push({
        shard,
        attempts: s.failure.attempts,
        error: s.failure.error,
        at: s.failure.at,
        deadLettered: s.failure.deadLettered === true,
      });
    }
  }
  return {
    partition: state.plan.partition,
    shards: state.plan.shards,
    done,
    startedAt: state.plan.createdAt,
    failedShards: failed.slice(0, LISTED_FAILURES),
    failedTotal: failed.length,
  };
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
