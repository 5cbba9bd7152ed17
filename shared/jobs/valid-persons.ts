import type { IdTypeRegistry } from '../id-types.js';
import type { Logger } from '../logger.js';
import type { MappingPerson } from '../mapping/mapping-codec.js';
import type { MappingRow } from '../mapping/mapping-source.js';
import { MAX_LOGGED_REJECTS } from './valid-segments.js';

/** What the mapping stream saw besides valid ids. */
export interface PersonCounters {
  skipped: number;
  partition: string | undefined;
}

/**
 * Turns mapping rows into persons of valid, normalised ids. An id whose type code is not in the
 * registry, or that does not fit its type's syntax, is counted, logged (type and reason only,
 * never the id) and skipped; a person left with no id is dropped.
 */
export async function* validPersons(
  rows: AsyncIterable<MappingRow>,
  registry: IdTypeRegistry,
  counters: PersonCounters,
  log: Logger,
): AsyncIterable<MappingPerson> {
  for await (const row of rows) {
    counters.partition ??= row.partition;
    const person: { id: string; typeCode: string }[] = [];
    for (const { id, type: code } of row.ids) {
      const type = registry.byCode(code);
      const typed = type && registry.asType(id, type);
      if (!typed) {
        counters.skipped++;
        if (counters.skipped <= MAX_LOGGED_REJECTS) {
          log.warn('skipping invalid mapping id', {
            typeCode: code.slice(0, 64),
            problem: type ? `does not fit ${type.name}` : 'unknown id type code',
          });
        }
        continue;
      }
      person.push({ id: typed.id, typeCode: code });
    }
    if (person.length > 0) yield person;
  }
}
