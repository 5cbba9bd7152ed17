import type { QueryResult } from '../emulators/bigquery-emulator.js';

/** One person as the mapping query returns them: ids with their type codes. */
export type PersonRow = ReadonlyArray<readonly [id: string, typeCode: string]>;

/**
 * The mapping query's result shape (see mappingSnapshotQuery), generated lazily from
 * `person(i)`: for benchmarks and tests that need more rows than a SQL table should hold.
 * Tests of the query's own semantics register a table instead (emulator.createTable).
 */
export function mappingResult(
  count: number,
  person: (i: number) => PersonRow,
  /** Today's (UTC) by default: the look-back windows of the code under test count from now. */
  partition = new Date().toISOString().slice(0, 10),
  pageSize = 1_000,
  dropped: ReadonlyArray<readonly [reason: string, rows: number]> = [],
): QueryResult {
  return {
    schema: [
      { name: 'first_partition', type: 'STRING', mode: 'NULLABLE' },
      { name: 'last_partition', type: 'STRING', mode: 'NULLABLE' },
      {
        name: 'ids',
        type: 'RECORD',
        mode: 'REPEATED',
        fields: [
          { name: 'id', type: 'STRING' },
          { name: 'type', type: 'STRING' },
        ],
      },
      { name: 'reason', type: 'STRING', mode: 'NULLABLE' },
      { name: 'row_count', type: 'INT64', mode: 'NULLABLE' },
    ],
    totalRows: count + dropped.length,
    pageSize,
    row: (i) => {
      const drop = dropped[i];
      if (drop) return [partition, partition, [], drop[0], drop[1]];
      const ids = person(i - dropped.length).map(([id, type]) => [id, type]);
      return [partition, partition, ids, null, ids.length];
    },
  };
}
