import type { IdTypeRegistry } from '../id-types.js';
import type { Logger } from '../logger.js';
import type { MappingPerson } from '../mapping/mapping-codec.js';
import { checkMappingId, type MappingRow, type MappingWindow } from '../mapping/mapping-source.js';
import { countInto } from '../skip-counts.js';
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

/**
 * Turns mapping rows into persons of valid, normalised ids. The query's own counts of dropped
 * rows are added up by reason. An id checkMappingId refuses (`unknown_type`, `invalid_id`) is
 * counted, logged (type and reason only, never the id) and skipped; a person left with no id is
 * dropped.
 */
export async function* validPersons(
  rows: AsyncIterable<MappingRow>,
  registry: IdTypeRegistry,
  counters: PersonCounters,
  log: Logger,
): AsyncIterable<MappingPerson> {
  let logged = 0;
  for await (const row of rows) {
    counters.window ??= row.window;
    if (row.kind === 'dropped') {
      countInto(counters.skippedByReason, row.reason, row.rows);
      continue;
    }
    const person: { id: string; typeCode: string }[] = [];
    for (const { id, type: code } of row.ids) {
      const checked = checkMappingId(registry, id, code);
      if ('reason' in checked) {
        countInto(counters.skippedByReason, checked.reason);
        if (logged++ < MAX_LOGGED_REJECTS) {
          log.warn('skipping invalid mapping id', {
            typeCode: code.slice(0, 64),
            reason: checked.reason,
            problem: checked.problem,
          });
        }
        continue;
      }
      person.push({ id: checked.id, typeCode: code });
    }
    if (person.length > 0) yield person;
  }
}
