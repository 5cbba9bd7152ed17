import type { LinkedId, MappingHit, MappingIndex, MappingIndexBuilder } from './mapping-index.js';

/** A straightforward Map-based mapping index; an id seen twice keeps its first person. */
export function simpleMappingIndexBuilder(): MappingIndexBuilder {
  const personOf = new Map<string, number>();
  const persons: LinkedId[][] = [];
  let idCount = 0;
  return {
    addPerson(flat) {
      const person: LinkedId[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const id = flat[i] as string;
        if (personOf.has(id)) continue;
        personOf.set(id, persons.length);
        person.push({ id, typeCode: flat[i + 1] as string });
        idCount++;
      }
      if (person.length > 0) persons.push(person);
    },
    build(): MappingIndex {
      return {
        idCount,
        personCount: persons.length,
        lookup(id: string, maxLinked: number): MappingHit | undefined {
          const p = personOf.get(id);
          if (p === undefined) return undefined;
          const person = persons[p] as LinkedId[];
          const self = person.find((entry) => entry.id === id) as LinkedId;
          const others = person.filter((entry) => entry.id !== id);
          return {
            typeCode: self.typeCode,
            linked: others.slice(0, maxLinked),
            linkedTotal: others.length,
          };
        },
      };
    },
  };
}
