import { checkId, type IdTypeRegistry } from '../id-types.js';
import type { DropReason } from './mapping-query.js';

/** The partitions a mapping snapshot covers (ISO dates), as the source reports them. */
export interface MappingWindow {
  readonly first: string;
  readonly last: string;
}

/**
 * One row of the mapping source: a person with their ids and type codes, or a count of source
 * rows the query dropped for one reason. Every row carries the window it was read from.
 */
export type MappingRow =
  | {
      readonly kind: 'person';
      readonly window: MappingWindow;
      readonly ids: ReadonlyArray<{ readonly id: string; readonly type: string }>;
    }
  | {
      readonly kind: 'dropped';
      readonly window: MappingWindow;
      readonly reason: DropReason;
      readonly rows: number;
    };

/** What a dry run of the mapping query says: it is valid, and what it would read. */
export interface MappingDryRun {
  readonly totalBytesProcessed: number;
  readonly referencedTables: readonly string[];
}

/** Where the identity mapping comes from: BigQuery in production. */
export interface MappingSource {
  /** What it reads, for logs and the manifest (no credentials). */
  readonly description: string;
  /** Every person of the window, streamed; stops with an error when `signal` aborts. */
  rows(signal: AbortSignal): AsyncIterable<MappingRow>;
  /**
   * Validates the query against the real table without running it (free of charge). Throws
   * InvalidQueryError when the source rejects it, BackendUnavailableError when it cannot answer.
   */
  dryRun(signal: AbortSignal): Promise<MappingDryRun>;
  close(): Promise<void>;
}

/** An id of the source as the mapping keeps it, or why it is left out. */
export type MappingIdCheck =
  | { readonly id: string }
  | { readonly reason: 'unknown_type' | 'invalid_id'; readonly problem: string };

/**
 * Checks one id of the source, the same in snapshot and Bigtable mode: normalised for its type,
 * or `unknown_type` (a type code the registry does not know) or `invalid_id` (it does not fit its
 * type, e.g. not a 64-bit integer for an integer-keyed type).
 */
export function checkMappingId(registry: IdTypeRegistry, id: string, code: string): MappingIdCheck {
  const type = registry.byCode(code);
  if (!type) return { reason: 'unknown_type', problem: 'unknown id type code' };
  const checked = checkId(id, type);
  if ('problem' in checked) {
    return { reason: 'invalid_id', problem: `does not fit ${type.name}: ${checked.problem}` };
  }
  return checked;
}
