/** The mapping table and how to read it. Names are validated identifiers (see config). */
export interface MappingTable {
  /** `project.dataset.table` */
  readonly table: string;
  readonly personColumn: string;
  readonly idColumn: string;
  readonly typeColumn: string;
  /** A DATE column, or `_PARTITIONDATE` for ingestion-time partitioning. */
  readonly partitionColumn: string;
}

/** Why the mapping query drops a source row; counted by the query, reported by the job. */
export const DROP_REASONS = [
  'no_person',
  'no_id',
  'no_type',
  'other_person',
  'duplicate_row',
  'moved',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/**
 * The snapshot query: one BigQuery script over the window of partitions ending at the latest
 * one within `@lookback_days` (the partition bounds are variables, so BigQuery prunes
 * partitions). BigQuery does all of the cleaning, so the job streams what it gets:
 * - rows with a NULL or empty person, id or type are dropped (GROUP BY puts every NULL person
 *   in ONE group: without this, strangers would be linked to each other);
 * - each (type, id) keeps one row: the one of its most recent partition, and within a
 *   partition the lexically smallest person (an id never belongs to two persons);
 * - persons are grouped from what is kept, their ids ordered by (id, type), persons by their
 *   smallest id: unchanged data gives an identical snapshot.
 * Dropped rows come back as a few extra rows carrying a `reason` and a `row_count` (listed first),
 * so that the job reports them without a second scan.
 */
export function mappingSnapshotQuery(t: MappingTable): string {
  return [
    ...windowDeclarations(t),
    ...cleaningRules(t),
    'SELECT',
    '  CAST(first_partition AS STRING) AS first_partition,',
    '  CAST(last_partition AS STRING) AS last_partition,',
    '  ids, reason, row_count',
    'FROM (',
    '  SELECT ARRAY_AGG(STRUCT(id AS id, type AS type) ORDER BY id, type) AS ids, MIN(id) AS first_id,',
    '    CAST(NULL AS STRING) AS reason, COUNT(*) AS row_count',
    '  FROM ranked WHERE n = 1 GROUP BY person',
    '  UNION ALL',
    '  SELECT ARRAY<STRUCT<id STRING, type STRING>>[], NULL, reason, COUNT(*)',
    '  FROM dropped GROUP BY reason',
    ')',
    'ORDER BY reason IS NULL, reason, first_id;',
  ].join('\n');
}

/**
 * The cleaning both queries share, over the window `first_partition..last_partition` (script
 * variables): `ranked` holds each (type, id) once per source row, n = 1 on the row it keeps (its
 * most recent partition's, within it the smallest person), and `dropped` one row per source row
 * left out, with the reason.
 */
function cleaningRules(t: MappingTable): string[] {
  return [
    'WITH source AS (',
    ...sourceColumns(t, 'first_partition', 'last_partition'),
    '),',
    'ranked AS (',
    '  SELECT part, person, id, type,',
    '    ROW_NUMBER() OVER newest_first AS n,',
    '    FIRST_VALUE(part) OVER newest_first AS id_part,',
    '    FIRST_VALUE(person) OVER newest_first AS id_person',
    '  FROM source',
    '  WHERE person IS NOT NULL AND id IS NOT NULL AND type IS NOT NULL',
    '  WINDOW newest_first AS (PARTITION BY type, id ORDER BY part DESC, person)',
    '),',
    'dropped AS (',
    "  SELECT IF(id IS NULL, 'no_id', IF(type IS NULL, 'no_type', 'no_person')) AS reason",
    '  FROM source WHERE person IS NULL OR id IS NULL OR type IS NULL',
    '  UNION ALL',
    '  SELECT CASE',
    "      WHEN part = id_part AND person != id_person THEN 'other_person'",
    "      WHEN part = id_part THEN 'duplicate_row'",
    "      ELSE 'moved' END",
    '  FROM ranked WHERE n > 1 AND (part = id_part OR person != id_person)',
    ')',
  ];
}

/** The query's parameters: how far back to look for the latest partition, how many days it spans. */
export function mappingQueryParams(lookbackDays: number, windowDays: number) {
  return {
    // The REST API types parameter values as strings; a JSON number is not one.
    params: { lookback_days: String(lookbackDays), window_days: String(windowDays) },
    types: { lookback_days: 'INT64', window_days: 'INT64' },
  };
}

function windowDeclarations(t: MappingTable): string[] {
  const table = `\`${t.table}\``;
  const part = `\`${t.partitionColumn}\``;
  return [
    'DECLARE last_partition DATE DEFAULT (',
    `  SELECT MAX(${part}) FROM ${table}`,
    `  WHERE ${part} >= DATE_SUB(CURRENT_DATE(), INTERVAL @lookback_days DAY)`,
    ');',
    'DECLARE first_partition DATE DEFAULT DATE_SUB(last_partition, INTERVAL @window_days - 1 DAY);',
  ];
}

/** The source rows of the partitions `from..to` (SQL expressions), typed and with '' as NULL. */
function sourceColumns(t: MappingTable, from: string, to: string): string[] {
  const part = `\`${t.partitionColumn}\``;
  return [
    '  SELECT',
    `    ${part} AS part,`,
    `    NULLIF(CAST(\`${t.personColumn}\` AS STRING), '') AS person,`,
    `    NULLIF(CAST(\`${t.idColumn}\` AS STRING), '') AS id,`,
    `    NULLIF(CAST(\`${t.typeColumn}\` AS STRING), '') AS type`,
    `  FROM \`${t.table}\``,
    `  WHERE ${part} BETWEEN ${from} AND ${to}`,
  ];
}

/**
 * The partitions of the mapping table in `@from..@to` (YYYY-MM-DD strings: the Node client
 * sends a string typed DATE as no value at all), oldest first.
 */
export function partitionListQuery(t: MappingTable): string {
  const part = `\`${t.partitionColumn}\``;
  return [
    `SELECT DISTINCT CAST(${part} AS STRING) AS day`,
    `FROM \`${t.table}\``,
    `WHERE ${part} BETWEEN CAST(@from AS DATE) AND CAST(@to AS DATE)`,
    'ORDER BY day;',
  ].join('\n');
}

/**
 * One version of the mapping for syncMapping: the window of `@window_days` partitions ending at
 * `@partition`, cleaned exactly as the snapshot query cleans it (the same persons, the same ids),
 * one row per person with its person key, its ids ordered by (id, type). Dropped rows come back
 * as extra rows with a `reason` and a `row_count`, listed first; persons follow ordered by their
 * key: a total order, so that a row's position in the result names the same person on every read
 * of it (shards are ranges of positions).
 */
export function versionSyncQuery(t: MappingTable): string {
  return [
    'DECLARE last_partition DATE DEFAULT CAST(@partition AS DATE);',
    'DECLARE first_partition DATE DEFAULT DATE_SUB(last_partition, INTERVAL @window_days - 1 DAY);',
    ...cleaningRules(t),
    'SELECT person, ids, reason, row_count FROM (',
    '  SELECT person, ARRAY_AGG(STRUCT(id AS id, type AS type) ORDER BY id, type) AS ids,',
    '    CAST(NULL AS STRING) AS reason, COUNT(*) AS row_count',
    '  FROM ranked WHERE n = 1 GROUP BY person',
    '  UNION ALL',
    '  SELECT CAST(NULL AS STRING), ARRAY<STRUCT<id STRING, type STRING>>[], reason, COUNT(*)',
    '  FROM dropped GROUP BY reason',
    ')',
    'ORDER BY reason IS NULL, reason, person;',
  ].join('\n');
}
