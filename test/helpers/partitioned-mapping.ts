import { type DemoDataset, generateDemoDataset, makeId } from '../../shared/demo/demo-dataset.js';
import { SeededRandom } from '../../shared/demo/random.js';

/** One row of the mapping table: partition date, person, id, type code (NULLs allowed). */
export type MappingTableRow = [string, string | null, string | null, string | null];

/** A mapping table over several daily partitions, with the profiles of its ids. */
export interface PartitionedMapping {
  readonly data: DemoDataset;
  readonly partitions: readonly string[];
  readonly rows: readonly MappingTableRow[];
  /** Every id the table mentions, with its type code (requested ones for comparisons). */
  readonly ids: readonly { readonly id: string; readonly typeCode: string }[];
}

/** The mapping table's columns, as BigQuery describes them (MappingTableRow's order). */
export const MAPPING_TABLE_SCHEMA = [
  { name: 'partition_date', type: 'DATE' },
  { name: 'person_id', type: 'STRING' },
  { name: 'user_id', type: 'STRING' },
  { name: 'id_type', type: 'STRING' },
];

/** The column settings of the mapping sources for a table of MAPPING_TABLE_SCHEMA. */
export const MAPPING_COLUMNS = {
  personColumn: 'person_id',
  idColumn: 'user_id',
  typeColumn: 'id_type',
  partitionColumn: 'partition_date',
} as const;

const DAY_MS = 86_400_000;

/**
 * The demo dataset's persons spread over `days` daily partitions ending at `last`, with what a
 * real identity graph does over time: persons whose ids appear on some days only, ids that move
 * to another person, ids claimed by two persons in one partition, rows without a person, id or
 * type, duplicate rows, a super-node present every day, and links seen only on the first day
 * (outside a window shorter than `days`: they must expire).
 */
export function partitionedMapping(options: {
  seed: number;
  persons: number;
  days: number;
  last: string;
}): PartitionedMapping {
  const data = generateDemoDataset({
    seed: options.seed,
    persons: options.persons,
    segments: 40,
    orphanProfiles: 30,
    superNodeIds: 80,
  });
  const rng = new SeededRandom(options.seed + 1);
  const partitions = Array.from({ length: options.days }, (_, d) =>
    new Date(Date.parse(`${options.last}T00:00:00Z`) - (options.days - 1 - d) * DAY_MS)
      .toISOString()
      .slice(0, 10),
  );
  const rows: MappingTableRow[] = [];
  const superNode = data.persons.length - 1;
  data.persons.forEach((person, p) => {
    const key = `person-${String(p).padStart(5, '0')}`;
    const firstDayOnly = p % 17 === 3 && p !== superNode;
    for (const [d, partition] of partitions.entries()) {
      if (firstDayOnly && d > 0) continue;
      // A super-node is in every partition; others show up on some days.
      const present = p === superNode || firstDayOnly || rng.chance(0.6);
      if (!present) continue;
      for (const { id, typeCode } of person) {
        if (p !== superNode && !rng.chance(0.8)) continue;
        rows.push([partition, key, id, typeCode]);
      }
    }
    // An id that moves to the next person on the later days.
    const mover = person[0];
    if (mover && p % 11 === 5 && p + 1 < superNode) {
      const next = `person-${String(p + 1).padStart(5, '0')}`;
      for (const partition of partitions.slice(-2))
        rows.push([partition, next, mover.id, mover.typeCode]);
    }
  });
  const last = partitions.at(-1) as string;
  // Two persons claiming one id in the same partition: the smallest person keeps it.
  for (let p = 7; p < superNode; p += 29) {
    const id = data.persons[p]?.[0];
    if (id) rows.push([last, `person-${String(p).padStart(5, '0')}-rival`, id.id, id.typeCode]);
  }
  // Rows no person, id or type can be taken from; duplicates.
  for (let i = 0; i < 40; i++) {
    const typeCode = rng.pick(['111111', '222222', '333333', '444444'] as const);
    const stranger = makeId(rng, typeCode);
    rows.push([last, i % 2 === 0 ? null : '', stranger, typeCode]);
  }
  rows.push([last, 'person-x', null, '444444'], [last, 'person-x', '1234567', null]);
  for (const row of rows.slice(0, 25)) rows.push([...row]);

  const seen = new Map<string, { id: string; typeCode: string }>();
  for (const [, , id, typeCode] of rows) {
    if (id && typeCode) seen.set(`${typeCode}\u0000${id}`, { id, typeCode });
  }
  for (const p of data.profiles) seen.set(`${p.set}\u0000${p.key}`, { id: p.key, typeCode: p.set });
  return { data, partitions, rows, ids: [...seen.values()] };
}
