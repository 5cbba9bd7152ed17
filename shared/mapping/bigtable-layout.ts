/**
 * How the identity mapping lives in Bigtable (MAPPING_STORE=bigtable). Written by syncMapping
 * (and its shard workers), read by the profile function; README "The Bigtable row layout"
 * documents the same layout.
 *
 * The table holds whole VERSIONS of the mapping: a version is the window of MAPPING_WINDOW_DAYS
 * partitions ending at one partition, cleaned by the snapshot query's rules (the same persons
 * snapshot mode would load), and every cell of a version carries one timestamp, the version's.
 * A reader reads exactly that timestamp, so an answer never mixes two versions.
 *
 * Rows (family `l`):
 * - id row     `i#<type code>#<id>`  qualifier `p`: the id's person key.
 * - person row `p#<person key>`      qualifier `\0n`: how many ids the person has (sorts first);
 *                                     qualifier `<id>\0<type code>` per member, value `m`.
 *                                     A person of 100,000 ids is ONE row, written in entries
 *                                     of bounded size and read with a bounded cell limit.
 * Rows (family `m`, one version per column):
 * - `_meta`  `version`: the version readers use (VersionRecord, JSON), written only after every
 *            cell of it has landed; `first_sync`: why a first sync found nothing (FirstSyncNote).
 * - `_sync`  the version being written: its plan and each shard's progress (sync-plan.ts).
 *
 * GC rule of `l`: max age (window + look-back days) OR max 2 versions. Two versions: the one
 * readers use survives while the next one is written; the sync starts a third only once no
 * reader can still hold the first (SETTLE_MS). Ids that leave the graph expire by age, so no row
 * grows without bound.
 */

/** The links family: id rows and person rows. */
export const LINKS_FAMILY = 'l';
/** The meta family: the version, the first sync note, the sync's progress. */
export const META_FAMILY = 'm';
/** Id rows' one qualifier. */
export const PERSON_QUALIFIER = 'p';
/** The person row's id count; `\0` sorts before every member qualifier. */
export const COUNT_QUALIFIER = '\u0000n';
export const META_ROW = '_meta';
export const VERSION_QUALIFIER = 'version';
/** Where syncs before versions kept the last synced partition (ignored now, see readSyncState). */
export const LEGACY_CHECKPOINT_QUALIFIER = 'checkpoint';
export const FIRST_SYNC_QUALIFIER = 'first_sync';
/** A member's value in its person row. */
export const MEMBER = 'm';
/** Versions of a link cell the GC rule keeps: the one read, and the one being written. */
export const LINK_VERSIONS = 2;

/**
 * How long a profile instance may answer from a version it has not read again: past it, a
 * request reads the version row first. Instances re-read it every REFRESH_INTERVAL_SECS, or
 * half of this, whichever is shorter.
 */
export const VERSION_LEASE_MS = 120_000;
/** The longest a request can read with a version it took (REQUEST_BUDGET_MS at most). */
const LONGEST_READ_MS = 60_000;
/** Clock differences between the instance that completes a version and the coordinator. */
const CLOCK_MARGIN_MS = 30_000;
/**
 * How long after a version became current the sync may start writing the next: by then no
 * instance answers from the version before it, whose cells the GC rule may drop once a newer
 * one is written (two versions are kept).
 */
export const SETTLE_MS = VERSION_LEASE_MS + LONGEST_READ_MS + CLOCK_MARGIN_MS;

/** One day, in milliseconds: partitions are daily. */
export const DAY_MS = 86_400_000;

/** The version readers use: what `_meta:version` holds. */
export interface VersionRecord {
  /** The window's last partition (YYYY-MM-DD): the `x-mapping-version` answers carry. */
  readonly partition: string;
  /** The cell timestamp of the version (ms since the epoch): its partition's 00:00 UTC + 1 ms or more. */
  readonly version: number;
  /** When it became current (ISO 8601). */
  readonly syncedAt: string;
  readonly windowDays: number;
  /** Result rows of its query (persons and counts of dropped rows): the next version's shrink guard. */
  readonly rows: number;
  readonly persons: number;
  readonly ids: number;
  /** When the GC rule may start dropping its cells (ISO 8601): readers stop answering from it then. */
  readonly expiresAt: string;
}

/**
 * What a first sync (no version yet) found when no partition lay within its look-back: the
 * sync refuses the run, and the profile function's /health shows this while nothing is synced.
 */
export interface FirstSyncNote {
  /** When the sync looked (ISO 8601). */
  readonly checkedAt: string;
  /** The oldest partition the look-back accepts: the run's UTC date minus MAPPING_LOOKBACK_DAYS. */
  readonly earliestAccepted: string;
  /** The newest partition the table has before that (searched a year back), or null: none. */
  readonly newestPartition: string | null;
  /** The setting that left `newestPartition` out, with its value (null when there is none). */
  readonly excludedBy: string | null;
  /** The same in words, with what to do. */
  readonly reason: string;
}

/** The id row of an id of a type. */
export function idRowKey(typeCode: string, id: string): string {
  return `i#${typeCode}#${id}`;
}

/** The person row of a person key. */
export function personRowKey(person: string): string {
  return `p#${person}`;
}

/**
 * The column of a member in a person row. Bigtable returns a family's qualifiers sorted by
 * bytes, and `\0` sorts before every id character: members come back ordered by id, then type
 * code, the same order the snapshot keeps.
 */
export function memberQualifier(id: string, typeCode: string): string {
  return `${id}\u0000${typeCode}`;
}

/** The id and type code of a member column, or undefined for another column (the count). */
export function parseMemberQualifier(
  qualifier: string,
): { id: string; typeCode: string } | undefined {
  const cut = qualifier.lastIndexOf('\u0000');
  if (cut <= 0 || cut === qualifier.length - 1) return undefined;
  return { id: qualifier.slice(0, cut), typeCode: qualifier.slice(cut + 1) };
}

/** A partition date (YYYY-MM-DD) as a time: that day's 00:00 UTC. */
export function partitionTime(partition: string): Date {
  const t = Date.parse(`${partition}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(partition) || Number.isNaN(t)) {
    throw new Error(`not a partition date: ${partition}`);
  }
  return new Date(t);
}

/** The partition `days` days after `partition` (before it, when negative). */
export function shiftDays(partition: string, days: number): string {
  return new Date(partitionTime(partition).getTime() + days * DAY_MS).toISOString().slice(0, 10);
}

/** The first partition of the window of `windowDays` partitions that ends at `last` (inclusive). */
export function windowStart(last: string, windowDays: number): string {
  return shiftDays(last, -(windowDays - 1));
}

/**
 * The timestamp of a new version of `partition`: 1 ms past its 00:00 UTC (cells of syncs before
 * versions sit at 00:00 exactly), and past the current version, so that a version written again
 * (a resync) is a new version, invisible until complete.
 */
export function nextVersionTime(partition: string, current: number | undefined): number {
  return Math.max(partitionTime(partition).getTime() + 1, (current ?? 0) + 1);
}

/** The `l` family's GC rule: expiry a little past the window, and two versions per column. */
export function linksGcRule(windowDays: number, lookbackDays: number) {
  return {
    age: { seconds: (windowDays + lookbackDays) * 86_400 },
    versions: LINK_VERSIONS,
    union: true,
  };
}

/** When the `l` family's GC rule may start dropping the cells of version `version`. */
export function versionExpiry(version: number, windowDays: number, lookbackDays: number): Date {
  return new Date(version + (windowDays + lookbackDays) * DAY_MS);
}

/** The cells of one version (timestamps are ms: the range is that one millisecond). */
export function versionFilter(version: number) {
  return [
    { family: LINKS_FAMILY },
    { time: { start: new Date(version), end: new Date(version + 1) } },
  ];
}

/**
 * A person row of one version, bounded: its count, then its first `members` members (a
 * super-node's row is never read whole).
 */
export function personFilter(version: number, members: number) {
  return [...versionFilter(version), { row: { cellLimit: members + 1 } }];
}
