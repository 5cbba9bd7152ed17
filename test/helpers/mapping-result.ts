import type { QueryResult } from '../emulators/bigquery-emulator.js';

/** One person as the mapping query returns them: ids with their type codes. */
export type PersonRow = ReadonlyArray<readonly [id: string, typeCode: string]>;

/** The mapping query's result shape, generated lazily from `person(i)`. */
export function mappingResult(
  count: number,
  person: (i: number) => PersonRow,
  partition = '2026-11-25',
  pageSize = 1_000,
): QueryResult {
  return {
    schema: [
      { name: 'partition_date', type: 'STRING', mode: 'NULLABLE' },
      {
        name: 'ids',
        type: 'RECORD',
        mode: 'REPEATED',
        fields: [
          { name: 'id', type: 'STRING' },
          { name: 'type', type: 'STRING' },
        ],
      },
    ],
    totalRows: count,
    pageSize,
    row: (i) => [partition, person(i).map(([id, type]) => [id, type])],
  };
}
