import type { Table } from '@google-cloud/bigtable';
import { LINKS_FAMILY, linksGcRule, META_FAMILY } from '../../shared/mapping/bigtable-layout.js';
import { openMappingTable } from '../../shared/mapping/bigtable-mapping-store.js';

/** The project and instance the tests use on the Bigtable emulator (any name works there). */
export const BIGTABLE = { projectId: 'local-project', instanceId: 'profile-api' } as const;

/**
 * Creates the mapping table with its families and GC rules on the emulator (what deploy.sh does
 * with gcloud in production) and returns it. Needs BIGTABLE_EMULATOR_HOST.
 */
export async function createMappingTable(
  tableId: string,
  windowDays: number,
  lookbackDays = 7,
): Promise<Table> {
  const table = await openMappingTable({ ...BIGTABLE, tableId });
  await table.create({
    families: [
      { name: LINKS_FAMILY, rule: linksGcRule(windowDays, lookbackDays) },
      { name: META_FAMILY, rule: { versions: 1 } },
    ],
  });
  return table;
}

/** The profile function's settings for reading the mapping from `tableId` on the test instance. */
export function bigtableEnv(tableId: string): Record<string, string> {
  return {
    MAPPING_STORE: 'bigtable',
    BIGTABLE_PROJECT: BIGTABLE.projectId,
    BIGTABLE_INSTANCE: BIGTABLE.instanceId,
    BIGTABLE_TABLE: tableId,
  };
}

/**
 * Every cell of a table (all versions), as sorted comparable text: `<row> <family>:<qualifier>
 * @<timestamp> = <value>`. `families` picks some (the links family `l` alone: what two syncs of
 * one version must agree on; the meta family holds times and plan ids).
 */
export async function dumpCells(table: Table, families?: readonly string[]): Promise<string[]> {
  const [rows] = await table.getRows();
  const cells: string[] = [];
  for (const row of rows) {
    for (const [family, columns] of Object.entries(
      row.data as Record<string, Record<string, { value: string; timestamp: string }[]>>,
    )) {
      if (families && !families.includes(family)) continue;
      for (const [qualifier, versions] of Object.entries(columns)) {
        for (const cell of versions) {
          cells.push(
            `${row.id} ${family}:${JSON.stringify(qualifier)} @${cell.timestamp} = ${cell.value}`,
          );
        }
      }
    }
  }
  return cells.sort();
}

/**
 * `table` with every insert (MutateRows) held back `ms` first: a slow cluster, for syncs that
 * must not finish within a deadline. `entries` (when given) receives every entry inserted.
 */
export function throttledTable(
  table: Table,
  ms: number,
  entries?: { key: string; data: Record<string, Record<string, unknown>> }[],
): Table {
  return new Proxy(table, {
    get(target, prop, receiver) {
      if (prop === 'insert') {
        return async (...args: Parameters<Table['insert']>) => {
          if (entries) entries.push(...(args[0] as typeof entries));
          if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
          return target.insert(...args);
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
}
