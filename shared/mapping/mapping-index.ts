/** An id linked to another, with the code of its id type. */
export interface LinkedId {
  readonly id: string;
  readonly typeCode: string;
}

/** What the mapping knows about one id: its type and the other ids of the same person. */
export interface MappingHit {
  readonly typeCode: string;
  /** At most the requested number of linked ids, in snapshot order. */
  readonly linked: LinkedId[];
  /** How many linked ids the person has in all, before the cap. */
  readonly linkedTotal: number;
}

/** The identity mapping in memory. Lookups take user input and must treat it as data only. */
export interface MappingIndex {
  readonly idCount: number;
  readonly personCount: number;
  /** The person of the id of that type (ids are keyed by type and id together). */
  lookup(id: string, typeCode: string, maxLinked: number): MappingHit | undefined;
}
