import { checkId, type IdTypeRegistry } from '../id-types.js';
import type { Logger } from '../logger.js';
import type { MappingPerson } from '../mapping/mapping-codec.js';
import type { MappingRow, MappingWindow } from '../mapping/mapping-source.js';
import { MAX_LOGGED_REJECTS } from './valid-segments.js';

/** What the mapping stream saw besides valid ids. */
export interface PersonCounters {
  /** Source rows left out, by reason: the query's (no_person, other_person...) and ours. */
  readonly skippedByReason: Map<string, number>;
  window: MappingWindow | undefined;
}

/** Fresh counters for one run. */
export function personCounters(): PersonCounters {
  return { skippedByReason: new Map(), window: undefined };
}

/** All skipped rows together. */
export function totalSkipped(counters: { readonly skippedByReason: Map<string, number> }): number {
  let total = 0;
  for (const n of counters.skippedByReason.values()) total += n;
  return total;
}

/**
 * Turns mapping rows into persons of valid, normalised ids. The query's own counts of dropped
 * rows are added up by reason. An id whose type code is not in the registry (`unknown_type`),
 * or that does not fit its type (`invalid_id`, e.g. not a 64-bit integer for an integer-keyed
 * type), is counted, logged (type and reason only, never the id) and skipped; a person left
 * with no id is dropped.
 */
export async function* validPersons(
  rows: AsyncIterable<MappingRow>,
  registry: IdTypeRegistry,
  counters: PersonCounters,
  log: Logger,
): AsyncIterable<MappingPerson> {
  const skip = (reason: string, n = 1) =>
    counters.skippedByReason.set(reason, (counters.skippedByReason.get(reason) ?? 0) + n);
  let logged = 0;
  for await (const row of rows) {
    counters.window ??= row.window;
    if (row.kind === 'dropped') {
      skip(row.reason, row.rows);
      continue;
    }
    const person: { id: string; typeCode: string }[] = [];
    for (const { id, type: code } of row.ids) {
      const type = registry.byCode(code);
      const checked = type && checkId(id, type);
      if (!checked || 'problem' in checked) {
        const reason = type ? 'invalid_id' : 'unknown_type';
        skip(reason);
        if (logged++ < MAX_LOGGED_REJECTS) {
          log.warn('skipping invalid mapping id', {
            typeCode: code.slice(0, 64),
            reason,
            problem: checked
              ? `does not fit ${type?.name}: ${checked.problem}`
              : 'unknown id type code',
          });
        }
        continue;
      }
      person.push({ id: checked.id, typeCode: code });
    }
    if (person.length > 0) yield person;
  }
}
