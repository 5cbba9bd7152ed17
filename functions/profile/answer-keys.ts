import type { ProfileEntry } from './lookup-plan.js';

/** Entries up to this many are checked for a repeated id pairwise (no Set per answer). */
const PAIRWISE_MAX = 16;

/**
 * The key of each entry of an answer, when two entries share an id text; undefined when every
 * id is distinct (the common case: then each key is the bare id).
 *
 * Answers are keyed by id text while the mapping is keyed by (type, id): two types with
 * overlapping syntax (iOS and Android advertising ids are both UUIDs) can give one person the
 * same text twice, and a duplicate JSON key is silently lost by most parsers. The rule, stable
 * for the same answer: the first entry with a text keeps it bare (the requested id always does:
 * it comes first); a later entry with the same text is keyed `<type name>:<id>` (type names
 * hold no colon, so the key splits at its first one); should that key be taken too (an id that
 * is itself written so), `<type name>:<id>#<n>` with the smallest free n from 2.
 */
export function answerKeys(entries: readonly ProfileEntry[]): readonly string[] | undefined {
  if (!hasRepeatedId(entries)) return undefined;
  const taken = new Set<string>();
  const keys: string[] = [];
  for (const entry of entries) {
    let key = entry.id;
    if (taken.has(key)) {
      const qualified = `${entry.type.name}:${entry.id}`;
      key = qualified;
      for (let n = 2; taken.has(key); n++) key = `${qualified}#${n}`;
    }
    taken.add(key);
    keys.push(key);
  }
  return keys;
}

function hasRepeatedId(entries: readonly ProfileEntry[]): boolean {
  const n = entries.length;
  if (n < 2) return false;
  if (n > PAIRWISE_MAX) return new Set(entries.map((e) => e.id)).size < n;
  for (let i = 1; i < n; i++) {
    const id = (entries[i] as ProfileEntry).id;
    for (let j = 0; j < i; j++) if ((entries[j] as ProfileEntry).id === id) return true;
  }
  return false;
}
