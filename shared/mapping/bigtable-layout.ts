/**
 * How the identity mapping lives in Bigtable (MAPPING_STORE=bigtable). Written by syncMapping,
 * read by the profile function; README "Choosing a mapping store" documents the same layout.
 *
 * Rows (all cells in family `l`, timestamped with their partition's date, 00:00 UTC):
 * - id row    `i#<type code>#<id>`   qualifier `p`: the id's person key in that partition.
 *                                     One cell per id and partition: linear in ids.
 * - person row `p#<person key>`       qualifier `<id>\0<type code>` per member id:
 *                                     value `m` (member in that partition) or `x` (moved to
 *                                     another person in that partition: a tombstone).
 *                                     One cell per member and partition: also linear in ids,
 *                                     and a person of 10,000 ids is ONE row of 10,000 columns.
 * - meta row   `_meta`               family `m`, qualifier `checkpoint`: the last partition
 *                                     fully synced (no expiry); qualifier `first_sync`: why a
 *                                     first sync found nothing to write (FirstSyncNote, JSON),
 *                                     shown by /health while nothing is synced.
 * GC rule of `l`: max age (window + look-back days) OR max 1 version: a row holds at most one
 * cell per column, and links that stop appearing disappear, so no row grows without bound.
 * GC is lazy, so reads also filter by timestamp: the window is exactly the partitions
 * `checkpoint - (MAPPING_WINDOW_DAYS - 1)` .. `checkpoint`, as in snapshot mode. A request reads
 * the id rows of its candidate types (one multi-row read) and one person row: two reads.
 */

/** The links family: id rows and person rows. */
export const LINKS_FAMILY = 'l';
/** The meta family: the sync checkpoint. */
export const META_FAMILY = 'm';
/** Id rows' one qualifier. */
export const PERSON_QUALIFIER = 'p';
export const META_ROW = '_meta';
export const CHECKPOINT_QUALIFIER = 'checkpoint';
export const FIRST_SYNC_QUALIFIER = 'first_sync';
/** Person-row values: still a member, or moved to another person. */
export const MEMBER = 'm';
export const MOVED = 'x';

/** One day, in milliseconds: partitions are daily. */
export const DAY_MS = 86_400_000;

/**
 * What a first sync (no checkpoint yet) found when no partition lay within its look-back: the
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

/** The id and type code of a member column, or undefined for a foreign column. */
export function parseMemberQualifier(
  qualifier: string,
): { id: string; typeCode: string } | undefined {
  const cut = qualifier.lastIndexOf('\u0000');
  if (cut <= 0 || cut === qualifier.length - 1) return undefined;
  return { id: qualifier.slice(0, cut), typeCode: qualifier.slice(cut + 1) };
}

/** A partition date (YYYY-MM-DD) as the cell timestamp: that day's 00:00 UTC. */
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

/** The `l` family's GC rule: expiry a little past the window, and one version per column. */
export function linksGcRule(windowDays: number, lookbackDays: number) {
  return {
    age: { seconds: (windowDays + lookbackDays) * 86_400 },
    versions: 1,
    union: true,
  };
}

/**
 * The read filter of the mapping: cells of the window only (GC is lazy), the newest per column,
 * and on person rows members only (not tombstones), values stripped.
 */
export function windowFilter(last: string, windowDays: number, membersOnly: boolean) {
  const filter: Record<string, unknown>[] = [
    { family: LINKS_FAMILY },
    { time: { start: partitionTime(windowStart(last, windowDays)) } },
    { column: { cellLimit: 1 } },
  ];
  if (membersOnly) filter.push({ value: MEMBER }, { value: { strip: true } });
  return filter;
}
