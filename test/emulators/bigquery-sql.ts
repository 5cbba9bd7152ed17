/*
 * Runs BigQuery Standard SQL on tables the test registers, by translating it to DuckDB.
 *
 * The translator works on tokens grouped by parentheses, not on a full grammar: it rewrites
 * what differs between the dialects (backtick paths, "strings", typed literals, CAST
 * semantics, DATE_SUB, IF, STRUCT, ARRAY<...>[], ARRAY_AGG's null check, division by zero,
 * NULL ordering, f0_ column names...), passes through a whitelist of functions that behave
 * the same, and rejects everything else with 400 invalidQuery: an unsupported construct must
 * fail, never answer differently from BigQuery.
 *
 * Scripts run statement by statement: DECLARE/SET values are computed by DuckDB and substituted
 * as typed literals; the job's rows are the last SELECT's (keyResultStatement LAST).
 */
import {
  type DuckDBConnection,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBListType,
  DuckDBListValue,
  DuckDBStructType,
  DuckDBStructValue,
  DuckDBTimestampValue,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBValue,
} from '@duckdb/node-api';
import type { BigQueryField } from './bigquery-emulator.js';

/** A failure BigQuery would report: HTTP status, reason and message. */
export class BigQuerySqlError extends Error {
  override readonly name = 'BigQuerySqlError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A table as BigQuery names it in job statistics. */
export interface TableReference {
  projectId: string;
  datasetId: string;
  tableId: string;
}

/** A query to run (or dry-run) as the REST API carries it. */
export interface SqlRequest {
  query: string;
  /** The job's project: resolves `dataset.table`. */
  projectId: string;
  location: string;
  /** `queryParameters` of the request, untouched. */
  parameters?: unknown;
  /** `scriptOptions.keyResultStatement`: LAST (default) or FIRST_SELECT. */
  keyResultStatement?: unknown;
}

/** What a dry run reports. */
export interface SqlStatistics {
  statementType: 'SELECT' | 'SCRIPT';
  referencedTables: TableReference[];
  totalBytesProcessed: number;
  /** The result schema, for a single SELECT. */
  schema?: BigQueryField[];
}

/** The rows of the key statement, values ready for the emulator's cell encoder. */
export interface SqlResult extends SqlStatistics {
  schema: BigQueryField[];
  rows: unknown[][];
}

// ---------------------------------------------------------------------------------------------
// Tokens

type Token =
  | { kind: 'word'; text: string; upper: string; pos: number }
  | { kind: 'quoted'; text: string; pos: number }
  | { kind: 'string'; value: string; pos: number }
  | { kind: 'bytes'; pos: number }
  | { kind: 'number'; text: string; pos: number }
  | { kind: 'param'; name: string; pos: number }
  | { kind: 'positional'; pos: number }
  | { kind: 'op'; text: string; pos: number };
type Word = Extract<Token, { kind: 'word' }>;
interface Group {
  kind: 'group';
  open: '(' | '[';
  items: Node[];
  pos: number;
}
type Node = Token | Group;

const MULTI_OPS = ['!=', '<>', '<=', '>=', '||', '=>', '->', '<<'];
const SINGLE_OPS = '()[],;.+-*/%=<>~&|^:';

function invalid(message: string): BigQuerySqlError {
  return new BigQuerySqlError(400, 'invalidQuery', message);
}

function unsupported(what: string): BigQuerySqlError {
  return invalid(`${what} is not supported by the BigQuery test server`);
}

/** "[line:column]" of an offset, as BigQuery's messages show positions. */
function at(sql: string, pos: number): string {
  const before = sql.slice(0, pos).split('\n');
  return `[${before.length}:${(before.at(-1)?.length ?? 0) + 1}]`;
}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const fail = (message: string, pos: number) =>
    invalid(`Syntax error: ${message} at ${at(sql, pos)}`);
  while (i < sql.length) {
    const c = sql.charAt(i);
    const rest = sql.slice(i);
    if (/\s/.test(c)) {
      i += 1;
    } else if (rest.startsWith('--') || c === '#') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (rest.startsWith('/*')) {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw fail('Unclosed comment', i);
      i = end + 2;
    } else if (/^[rRbB]{0,2}['"]/.test(rest)) {
      // r'raw', b'bytes' and rb'' prefixes; a word ending in r/b was consumed as a word already.
      const prefix = /^[rRbB]*/.exec(rest)?.[0] ?? '';
      const start = i;
      i += prefix.length;
      const quote = sql.startsWith(sql.charAt(i).repeat(3), i)
        ? sql.charAt(i).repeat(3)
        : sql.charAt(i);
      i += quote.length;
      const raw = prefix.toLowerCase().includes('r');
      let value = '';
      for (;;) {
        if (i >= sql.length) throw fail('Unclosed string literal', start);
        if (sql.startsWith(quote, i)) break;
        const ch = sql.charAt(i);
        if (quote.length === 1 && ch === '\n') throw fail('Unclosed string literal', start);
        if (ch === '\\') {
          const next = sql.charAt(i + 1);
          if (raw) {
            value += ch + next;
          } else {
            value += escapeValue(next, () => fail('Illegal escape sequence', i));
          }
          i += 2;
          continue;
        }
        value += ch;
        i += 1;
      }
      i += quote.length;
      tokens.push(
        prefix.toLowerCase().includes('b')
          ? { kind: 'bytes', pos: start }
          : { kind: 'string', value, pos: start },
      );
    } else if (c === '`') {
      const start = i;
      let text = '';
      i += 1;
      for (;;) {
        if (i >= sql.length) throw fail('Unclosed identifier literal', start);
        const ch = sql.charAt(i);
        if (ch === '`') break;
        if (ch === '\\') {
          text += escapeValue(sql.charAt(i + 1), () => fail('Illegal escape sequence', i));
          i += 2;
          continue;
        }
        text += ch;
        i += 1;
      }
      i += 1;
      if (text === '') throw fail('Invalid empty identifier', start);
      tokens.push({ kind: 'quoted', text, pos: start });
    } else if (
      /^(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/.test(rest)
    ) {
      const text =
        /^(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/.exec(
          rest,
        )?.[0] ?? '';
      tokens.push({ kind: 'number', text, pos: i });
      i += text.length;
    } else if (/[A-Za-z_]/.test(c)) {
      const text = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest)?.[0] ?? c;
      tokens.push({ kind: 'word', text, upper: text.toUpperCase(), pos: i });
      i += text.length;
    } else if (rest.startsWith('@@')) {
      throw unsupported(`System variable ${/^@@[A-Za-z0-9_.]*/.exec(rest)?.[0] ?? '@@'}`);
    } else if (c === '@') {
      const name = /^@([A-Za-z_][A-Za-z0-9_]*|`[^`]+`)/.exec(rest)?.[1];
      if (!name) throw fail('Unexpected "@"', i);
      tokens.push({ kind: 'param', name: name.replaceAll('`', ''), pos: i });
      i += name.length + 1;
    } else if (c === '?') {
      tokens.push({ kind: 'positional', pos: i });
      i += 1;
    } else {
      const multi = MULTI_OPS.find((op) => rest.startsWith(op));
      if (multi) {
        tokens.push({ kind: 'op', text: multi, pos: i });
        i += multi.length;
      } else if (SINGLE_OPS.includes(c)) {
        tokens.push({ kind: 'op', text: c, pos: i });
        i += 1;
      } else {
        throw fail(`Illegal input character "${c}"`, i);
      }
    }
  }
  return tokens;
}

function escapeValue(next: string, fail: () => Error): string {
  const simple: Record<string, string> = {
    n: '\n',
    t: '\t',
    r: '\r',
    '\\': '\\',
    "'": "'",
    '"': '"',
    '`': '`',
    '?': '?',
    a: '\x07',
    b: '\b',
    f: '\f',
    v: '\v',
  };
  const value = simple[next];
  if (value === undefined) throw fail();
  return value;
}

/** Nests tokens into parenthesised/bracketed groups; splits nothing. */
function nest(tokens: Token[], sql: string): Node[] {
  const root: Node[] = [];
  const stack: { group: Group | undefined; items: Node[] }[] = [{ group: undefined, items: root }];
  for (const token of tokens) {
    const top = stack[stack.length - 1];
    if (!top) break;
    if (token.kind === 'op' && (token.text === '(' || token.text === '[')) {
      const group: Group = { kind: 'group', open: token.text, items: [], pos: token.pos };
      top.items.push(group);
      stack.push({ group, items: group.items });
    } else if (token.kind === 'op' && (token.text === ')' || token.text === ']')) {
      const expected = token.text === ')' ? '(' : '[';
      if (!top.group || top.group.open !== expected) {
        throw invalid(`Syntax error: Unexpected "${token.text}" at ${at(sql, token.pos)}`);
      }
      stack.pop();
    } else {
      top.items.push(token);
    }
  }
  const open = stack[stack.length - 1]?.group;
  if (open) throw invalid(`Syntax error: Unclosed "${open.open}" at ${at(sql, open.pos)}`);
  return root;
}

const isWord = (node: Node | undefined, ...words: string[]): boolean =>
  node?.kind === 'word' && (words.length === 0 || words.includes(node.upper));
const isOp = (node: Node | undefined, ...ops: string[]): boolean =>
  node?.kind === 'op' && (ops.length === 0 || ops.includes(node.text));
const isGroup = (node: Node | undefined, open: '(' | '[' = '('): node is Group =>
  node?.kind === 'group' && node.open === open;

/** Whether a `*` after `prev` selects all columns (`SELECT *`, `t.*`) rather than multiplies. */
const selectsAll = (prev: Node | undefined): boolean =>
  prev === undefined || isWord(prev, 'SELECT', 'DISTINCT', 'ALL') || isOp(prev, ',', '.');

/** Whether the nodes are a dotted name such as `t.col` (names joined by `.`). */
const isDottedName = (nodes: Node[]): boolean =>
  nodes.every((n, k) => (k % 2 === 0 ? n.kind === 'word' || n.kind === 'quoted' : isOp(n, '.')));

/** The dotted path at nodes[i]: its parts (quoted ones split on `.`), its last node's index. */
function readPath(nodes: Node[], i: number): { parts: string[]; end: number } {
  const parts: string[] = [];
  let j = i;
  for (;;) {
    const node = nodes[j];
    if (node?.kind === 'quoted') parts.push(...node.text.split('.'));
    else if (node?.kind === 'word') parts.push(node.text);
    else break;
    if (
      isOp(nodes[j + 1], '.') &&
      (nodes[j + 2]?.kind === 'word' || nodes[j + 2]?.kind === 'quoted')
    ) {
      j += 2;
    } else {
      break;
    }
  }
  return { parts, end: j };
}

function split(nodes: Node[], separator: string): Node[][] {
  const parts: Node[][] = [[]];
  for (const node of nodes) {
    if (isOp(node, separator)) parts.push([]);
    else parts[parts.length - 1]?.push(node);
  }
  return parts;
}

function position(node: Node | undefined): number {
  return node?.pos ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Types

type Scalar = 'STRING' | 'INT64' | 'FLOAT64' | 'BOOL' | 'DATE' | 'TIMESTAMP' | 'NUMERIC';
type BqType =
  | { kind: 'scalar'; name: Scalar }
  | { kind: 'array'; of: BqType }
  | { kind: 'struct'; fields: { name: string; type: BqType }[] };

const SCALAR_ALIASES = new Map<string, Scalar>([
  ['STRING', 'STRING'],
  ['INT64', 'INT64'],
  ['INT', 'INT64'],
  ['INTEGER', 'INT64'],
  ['BIGINT', 'INT64'],
  ['SMALLINT', 'INT64'],
  ['TINYINT', 'INT64'],
  ['BYTEINT', 'INT64'],
  ['FLOAT64', 'FLOAT64'],
  ['FLOAT', 'FLOAT64'],
  ['BOOL', 'BOOL'],
  ['BOOLEAN', 'BOOL'],
  ['DATE', 'DATE'],
  ['TIMESTAMP', 'TIMESTAMP'],
  ['NUMERIC', 'NUMERIC'],
  ['DECIMAL', 'NUMERIC'],
]);

const DUCK_SCALARS: Record<Scalar, string> = {
  STRING: 'VARCHAR',
  INT64: 'BIGINT',
  FLOAT64: 'DOUBLE',
  BOOL: 'BOOLEAN',
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMP',
  NUMERIC: 'DECIMAL(38, 9)',
};

function scalarType(name: string): BqType | undefined {
  const scalar = SCALAR_ALIASES.get(name.toUpperCase());
  return scalar && { kind: 'scalar', name: scalar };
}

function duckType(type: BqType): string {
  switch (type.kind) {
    case 'scalar':
      return DUCK_SCALARS[type.name];
    case 'array':
      return `${duckType(type.of)}[]`;
    case 'struct':
      return `STRUCT(${type.fields.map((f) => `${ident(f.name)} ${duckType(f.type)}`).join(', ')})`;
  }
}

/** Parses `T`, `ARRAY<T>` or `STRUCT<name T, ...>` starting at nodes[i]. */
function parseType(nodes: Node[], i: number, sql: string): { type: BqType; next: number } {
  const node = nodes[i];
  if (node?.kind !== 'word') {
    throw invalid(`Syntax error: Expected a type at ${at(sql, position(node))}`);
  }
  if (node.upper === 'ARRAY' || node.upper === 'STRUCT') {
    if (!isOp(nodes[i + 1], '<')) {
      throw invalid(`Syntax error: Expected "<" after ${node.upper} at ${at(sql, node.pos)}`);
    }
    let j = i + 2;
    let type: BqType;
    if (node.upper === 'ARRAY') {
      const inner = parseType(nodes, j, sql);
      if (inner.type.kind === 'array') throw invalid('Arrays of arrays are not supported');
      type = { kind: 'array', of: inner.type };
      j = inner.next;
    } else {
      const fields: { name: string; type: BqType }[] = [];
      while (!isOp(nodes[j], '>')) {
        const name = nodes[j];
        if (name?.kind !== 'word' && name?.kind !== 'quoted') {
          throw unsupported('A STRUCT field without a name');
        }
        const inner = parseType(nodes, j + 1, sql);
        fields.push({ name: name.text, type: inner.type });
        j = inner.next;
        if (isOp(nodes[j], ',')) j += 1;
      }
      type = { kind: 'struct', fields };
    }
    if (!isOp(nodes[j], '>')) {
      throw invalid(`Syntax error: Expected ">" at ${at(sql, position(nodes[j]))}`);
    }
    return { type, next: j + 1 };
  }
  const type = scalarType(node.text);
  if (!type || isGroup(nodes[i + 1])) throw unsupported(`Type ${node.text}`);
  return { type, next: i + 1 };
}

/** The BigQuery type of a DuckDB result column, as a schema field. */
function fieldFor(name: string, type: DuckDBType): BigQueryField {
  if (type instanceof DuckDBListType) {
    if (type.valueType instanceof DuckDBListType) {
      throw invalid('Cannot construct array with element type ARRAY');
    }
    return { ...fieldFor(name, type.valueType), mode: 'REPEATED' };
  }
  if (type instanceof DuckDBStructType) {
    const fields = type.entryNames.map((entry, i) => {
      const entryType = type.entryTypes[i];
      if (!entryType) throw new Error(`struct field ${entry} has no type`);
      return fieldFor(entry, entryType);
    });
    return { name, type: 'RECORD', mode: 'NULLABLE', fields };
  }
  // The REST API reports legacy type names in query result schemas.
  switch (type.typeId) {
    case DuckDBTypeId.VARCHAR:
      return { name, type: 'STRING', mode: 'NULLABLE' };
    case DuckDBTypeId.BOOLEAN:
      return { name, type: 'BOOLEAN', mode: 'NULLABLE' };
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.SQLNULL:
    case DuckDBTypeId.INTEGER_LITERAL:
      return { name, type: 'INTEGER', mode: 'NULLABLE' };
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
      return { name, type: 'FLOAT', mode: 'NULLABLE' };
    case DuckDBTypeId.DECIMAL:
      return { name, type: 'NUMERIC', mode: 'NULLABLE' };
    case DuckDBTypeId.DATE:
      return { name, type: 'DATE', mode: 'NULLABLE' };
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_TZ:
      return { name, type: 'TIMESTAMP', mode: 'NULLABLE' };
    default:
      throw unsupported(`A result column of DuckDB type ${type.toString()} (${name})`);
  }
}

/** A DuckDB result value as the emulator's cell encoder takes it. */
function cellValue(value: DuckDBValue, field: BigQueryField): unknown {
  if (value === null) return null;
  if (field.mode === 'REPEATED') {
    if (!(value instanceof DuckDBListValue)) throw new Error(`${field.name}: expected a list`);
    const item = { ...field, mode: 'NULLABLE' as const };
    return value.items.map((v) => cellValue(v, item));
  }
  if (field.type === 'RECORD') {
    if (!(value instanceof DuckDBStructValue)) throw new Error(`${field.name}: expected a struct`);
    return (field.fields ?? []).map((f) => cellValue(value.entries[f.name] ?? null, f));
  }
  if (value instanceof DuckDBTimestampValue) return value.micros;
  if (value instanceof DuckDBDateValue || value instanceof DuckDBDecimalValue) {
    return value.toString();
  }
  if (typeof value === 'number' && field.type === 'FLOAT') return floatText(value);
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') {
    return typeof value === 'string' ? value : String(value);
  }
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'object' && 'micros' in value && typeof value.micros === 'bigint') {
    return value.micros;
  }
  throw new Error(`${field.name}: unexpected value ${String(value)}`);
}

function floatText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return 'Infinity';
  if (value === Number.NEGATIVE_INFINITY) return '-Infinity';
  return String(value);
}

// ---------------------------------------------------------------------------------------------
// Literals

function quote(text: string): string {
  if (text.includes('\0')) throw unsupported('A string with a NUL character');
  return `'${text.replaceAll("'", "''")}'`;
}

function ident(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}

function nullOf(type: BqType): string {
  return `CAST(NULL AS ${duckType(type)})`;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function int64Literal(text: string, what: () => string): string {
  const trimmed = text.trim();
  if (!/^[+-]?(\d+|0[xX][0-9a-fA-F]+)$/.test(trimmed))
    throw invalid(`${what()}: bad INT64 value ${trimmed}`);
  const negative = trimmed.startsWith('-');
  const digits = trimmed.replace(/^[+-]/, '');
  const value = negative ? -BigInt(digits) : BigInt(digits);
  if (value < INT64_MIN || value > INT64_MAX)
    throw invalid(`${what()}: INT64 out of range ${trimmed}`);
  return `CAST(${value} AS BIGINT)`;
}

function dateLiteral(text: string, what: () => string): string {
  const match = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(text.trim());
  const [, y = '', m = '', d = ''] = match ?? [];
  const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  if (!match || date.getUTCMonth() !== Number(m) - 1 || date.getUTCDate() !== Number(d)) {
    throw invalid(`${what()}: invalid date '${text}'`);
  }
  return `DATE '${date.toISOString().slice(0, 10)}'`;
}

const TIMESTAMP_TEXT =
  /^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?\s*(Z|UTC|[+-]\d{1,2}(:\d{2})?)?$/i;

function timestampLiteral(text: string, what: () => string): string {
  if (!TIMESTAMP_TEXT.test(text.trim())) throw invalid(`${what()}: invalid timestamp '${text}'`);
  // Through TIMESTAMPTZ so an explicit offset is honoured (the session time zone is UTC).
  return `CAST(CAST(${quote(text.trim())} AS TIMESTAMPTZ) AS TIMESTAMP)`;
}

/** A literal of a BigQuery parameter value (REST form: strings, arrayValues). */
function parameterLiteral(type: unknown, value: unknown, what: () => string): string {
  const t = record(type);
  const name = String(t.type ?? '').toUpperCase();
  if (name === 'ARRAY') {
    const itemType = parameterType(t.arrayType, what);
    const arrayValues = record(value).arrayValues;
    if (!Array.isArray(arrayValues)) return `CAST([] AS ${duckType(itemType)}[])`;
    const items = arrayValues.map((v) => parameterLiteral(t.arrayType, v, what));
    return `CAST([${items.join(', ')}] AS ${duckType(itemType)}[])`;
  }
  const bqType = parameterType(type, what);
  const raw = record(value).value;
  if (raw === undefined || raw === null) return nullOf(bqType);
  const text = String(raw);
  if (bqType.kind !== 'scalar') throw unsupported(`${what()} of type ${name}`);
  switch (bqType.name) {
    case 'STRING':
      return quote(text);
    case 'INT64':
      return int64Literal(text, what);
    case 'FLOAT64':
      if (
        !/^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf(?:inity)?|nan)$/i.test(text.trim())
      ) {
        throw invalid(`${what()}: bad FLOAT64 value ${text}`);
      }
      return `CAST(${quote(text.trim())} AS DOUBLE)`;
    case 'BOOL':
      if (!/^(true|false)$/i.test(text)) throw invalid(`${what()}: bad BOOL value ${text}`);
      return text.toUpperCase();
    case 'DATE':
      return dateLiteral(text, what);
    case 'TIMESTAMP':
      return timestampLiteral(text, what);
    case 'NUMERIC':
      if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text.trim())) {
        throw invalid(`${what()}: bad NUMERIC value ${text}`);
      }
      return `CAST(${quote(text.trim())} AS DECIMAL(38, 9))`;
  }
}

function parameterType(type: unknown, what: () => string): BqType {
  const name = String(record(type).type ?? '');
  const scalar = scalarType(name);
  if (!scalar) throw unsupported(`${what()} of type ${name || 'unknown'}`);
  return scalar;
}

/** A value computed by DuckDB (DECLARE/SET, as cellValue gives it), as a typed literal. */
function valueLiteral(value: unknown, type: BqType): string {
  if (value === null || value === undefined) return nullOf(type);
  if (type.kind !== 'scalar') throw unsupported('A variable of type ARRAY or STRUCT');
  switch (type.name) {
    case 'STRING':
      return quote(String(value));
    case 'INT64':
      return `CAST(${String(value)} AS BIGINT)`;
    case 'FLOAT64':
      return `CAST(${quote(String(value))} AS DOUBLE)`;
    case 'BOOL':
      return value === 'true' ? 'TRUE' : 'FALSE';
    case 'DATE':
      return `DATE ${quote(String(value))}`;
    case 'TIMESTAMP':
      if (typeof value !== 'bigint') throw new Error('expected a timestamp');
      return `make_timestamp(CAST(${value} AS BIGINT))`;
    case 'NUMERIC':
      return `CAST(${quote(String(value))} AS DECIMAL(38, 9))`;
  }
}

function scalarOfField(field: BigQueryField): BqType {
  if (field.mode === 'REPEATED' || field.type === 'RECORD') {
    throw unsupported('A variable of type ARRAY or STRUCT');
  }
  const type = scalarType(field.type === 'FLOAT' ? 'FLOAT64' : field.type);
  if (!type) throw unsupported(`A variable of type ${field.type}`);
  return type;
}

// ---------------------------------------------------------------------------------------------
// Keywords and functions

const RESERVED = new Set(
  (
    'ALL AND ANY ARRAY AS ASC ASSERT_ROWS_MODIFIED AT BETWEEN BY CASE CAST COLLATE CONTAINS ' +
    'CREATE CROSS CUBE CURRENT DEFAULT DEFINE DESC DISTINCT ELSE END ENUM ESCAPE EXCEPT EXCLUDE ' +
    'EXISTS EXTRACT FALSE FETCH FOLLOWING FOR FROM FULL GROUP GROUPING GROUPS HASH HAVING IF ' +
    'IGNORE IN INNER INTERSECT INTERVAL INTO IS JOIN LATERAL LEFT LIKE LIMIT LOOKUP MERGE NATURAL ' +
    'NEW NO NOT NULL NULLS OF ON OR ORDER OUTER OVER PARTITION PRECEDING PROTO QUALIFY RANGE ' +
    'RECURSIVE RESPECT RIGHT ROLLUP ROWS SELECT SET SOME STRUCT TABLESAMPLE THEN TO TREAT TRUE ' +
    'UNBOUNDED UNION UNNEST USING WHEN WHERE WINDOW WITH WITHIN'
  ).split(' '),
);
const REJECTED_KEYWORDS = new Set(
  (
    'ANY SOME ASSERT_ROWS_MODIFIED AT COLLATE CONTAINS CREATE DEFINE ENUM ESCAPE EXCLUDE FETCH ' +
    'FOR GROUPS HASH INTO LATERAL LOOKUP MERGE NATURAL NEW NO OF PROTO SET TABLESAMPLE TO TREAT ' +
    'WITHIN DEFAULT'
  ).split(' '),
);
/** Keywords that end a FROM clause, a select list or a BY list at their query level. */
const CLAUSES = new Set(
  'SELECT FROM WHERE GROUP HAVING QUALIFY WINDOW ORDER LIMIT UNION INTERSECT EXCEPT'.split(' '),
);

/** Functions whose DuckDB namesake computes the same thing. */
const SAME_FUNCTIONS = new Map(
  Object.entries({
    COUNT: 'count',
    SUM: 'sum',
    AVG: 'avg',
    MIN: 'min',
    MAX: 'max',
    COUNTIF: 'count_if',
    LOGICAL_AND: 'bool_and',
    LOGICAL_OR: 'bool_or',
    ANY_VALUE: 'any_value',
    STRING_AGG: 'string_agg',
    ROW_NUMBER: 'row_number',
    RANK: 'rank',
    DENSE_RANK: 'dense_rank',
    PERCENT_RANK: 'percent_rank',
    CUME_DIST: 'cume_dist',
    NTILE: 'ntile',
    FIRST_VALUE: 'first_value',
    LAST_VALUE: 'last_value',
    NTH_VALUE: 'nth_value',
    LAG: 'lag',
    LEAD: 'lead',
    COALESCE: 'coalesce',
    IFNULL: 'coalesce',
    NULLIF: 'nullif',
    LOWER: 'lower',
    UPPER: 'upper',
    LENGTH: 'length',
    CHAR_LENGTH: 'length',
    CHARACTER_LENGTH: 'length',
    ABS: 'abs',
    SIGN: 'sign',
    FLOOR: 'floor',
    CEIL: 'ceil',
    CEILING: 'ceil',
    ROUND: 'round',
    STARTS_WITH: 'starts_with',
    ENDS_WITH: 'ends_with',
    TRIM: 'trim',
    LTRIM: 'ltrim',
    RTRIM: 'rtrim',
    REVERSE: 'reverse',
    REPLACE: 'replace',
    STRPOS: 'strpos',
    REGEXP_CONTAINS: 'regexp_matches',
    ARRAY_LENGTH: 'len',
  }),
);

const DATE_PARTS: Record<string, (n: string) => string> = {
  DAY: (n) => `to_days(CAST(${n} AS INTEGER))`,
  WEEK: (n) => `to_days(CAST(${n} AS INTEGER) * 7)`,
  MONTH: (n) => `to_months(CAST(${n} AS INTEGER))`,
  QUARTER: (n) => `to_months(CAST(${n} AS INTEGER) * 3)`,
  YEAR: (n) => `to_years(CAST(${n} AS INTEGER))`,
};
const TIME_PARTS: Record<string, (n: string) => string> = {
  MICROSECOND: (n) => `to_microseconds(CAST(${n} AS BIGINT))`,
  MILLISECOND: (n) => `to_milliseconds(CAST(${n} AS BIGINT))`,
  SECOND: (n) => `to_seconds(CAST(${n} AS BIGINT))`,
  MINUTE: (n) => `to_minutes(CAST(${n} AS BIGINT))`,
  HOUR: (n) => `to_hours(CAST(${n} AS BIGINT))`,
  DAY: (n) => `to_days(CAST(${n} AS INTEGER))`,
};
const DIFF_DATE_PARTS = new Set(['DAY', 'MONTH', 'QUARTER', 'YEAR']);
const TRUNC_DATE_PARTS = new Map([
  ['DAY', 'day'],
  ['ISOWEEK', 'week'],
  ['MONTH', 'month'],
  ['QUARTER', 'quarter'],
  ['YEAR', 'year'],
]);
const EXTRACT_PARTS = new Map([
  ['YEAR', 'year'],
  ['QUARTER', 'quarter'],
  ['MONTH', 'month'],
  ['DAY', 'day'],
  ['DAYOFYEAR', 'dayofyear'],
  ['HOUR', 'hour'],
  ['MINUTE', 'minute'],
  ['SECOND', 'second'],
]);

/** Macros giving DuckDB BigQuery's semantics where its own differ. */
const MACROS = [
  // FLOAT64 prints without ".0"; TIMESTAMP with "+00" (fractions: format not modelled).
  `CREATE MACRO bq_string(x) AS CASE
     WHEN typeof(x) IN ('DOUBLE', 'FLOAT') THEN regexp_replace(CAST(x AS VARCHAR), '\\.0$', '')
     WHEN typeof(x) = 'TIMESTAMP' AND CAST(x AS VARCHAR) LIKE '%.%'
       THEN error('CAST(TIMESTAMP AS STRING) with fractional seconds is not supported by the BigQuery test server')
     WHEN typeof(x) = 'TIMESTAMP' THEN CAST(x AS VARCHAR) || '+00'
     WHEN typeof(x) LIKE '%[]' OR typeof(x) LIKE 'STRUCT%' THEN error('Invalid cast to STRING')
     ELSE CAST(x AS VARCHAR) END`,
  // FLOAT64 -> INT64 rounds half away from zero; strings must be integers (no "1e3").
  `CREATE MACRO bq_int64(x) AS CASE
     WHEN typeof(x) IN ('DOUBLE', 'FLOAT') THEN CAST(round(TRY_CAST(x AS DOUBLE)) AS BIGINT)
     WHEN typeof(x) = 'VARCHAR' AND NOT regexp_full_match(trim(CAST(x AS VARCHAR)), '[+-]?(\\d+|0[xX][0-9a-fA-F]+)')
       THEN error('Bad int64 value: ' || CAST(x AS VARCHAR))
     ELSE CAST(x AS BIGINT) END`,
  `CREATE MACRO bq_safe_int64(x) AS CASE
     WHEN typeof(x) IN ('DOUBLE', 'FLOAT') THEN TRY_CAST(round(TRY_CAST(x AS DOUBLE)) AS BIGINT)
     WHEN typeof(x) = 'VARCHAR' AND NOT regexp_full_match(trim(CAST(x AS VARCHAR)), '[+-]?(\\d+|0[xX][0-9a-fA-F]+)')
       THEN NULL
     ELSE TRY_CAST(x AS BIGINT) END`,
  // Strings may carry a UTC offset, which a plain cast to TIMESTAMP would drop.
  `CREATE MACRO bq_timestamp(x) AS CASE
     WHEN typeof(x) = 'VARCHAR' THEN CAST(CAST(x AS TIMESTAMPTZ) AS TIMESTAMP)
     ELSE CAST(x AS TIMESTAMP) END`,
  `CREATE MACRO bq_safe_timestamp(x) AS CASE
     WHEN typeof(x) = 'VARCHAR' THEN TRY_CAST(TRY_CAST(x AS TIMESTAMPTZ) AS TIMESTAMP)
     ELSE TRY_CAST(x AS TIMESTAMP) END`,
  // BigQuery fails where DuckDB answers NULL.
  `CREATE MACRO bq_nonzero(x) AS CASE WHEN x = 0 THEN error('division by zero') ELSE x END`,
  `CREATE MACRO bq_nonnull_array(a) AS CASE
     WHEN len(list_filter(a, e -> e IS NULL)) > 0 THEN error('Array cannot have a null element')
     ELSE a END`,
];

// ---------------------------------------------------------------------------------------------
// Tables

interface TableEntry {
  ref: TableReference;
  schema: BigQueryField[];
  /** One SQL tuple per row, e.g. `(CAST(1 AS BIGINT), 'a')`. */
  tuples: string[];
  /** Estimated stored bytes per column, for dry-run statistics. */
  columnBytes: number[];
  loaded: number;
  created: boolean;
}

function tableKey(ref: TableReference): string {
  return `${ref.projectId}.${ref.datasetId}.${ref.tableId}`;
}

function duckTable(ref: TableReference): string {
  return `${ident(`${ref.projectId}.${ref.datasetId}`)}.${ident(ref.tableId)}`;
}

function fieldType(field: BigQueryField): BqType {
  let type: BqType;
  if (field.type === 'RECORD' || field.type === 'STRUCT') {
    type = {
      kind: 'struct',
      fields: (field.fields ?? []).map((f) => ({ name: f.name, type: fieldType(f) })),
    };
  } else {
    const scalar = scalarType(field.type);
    if (!scalar) throw new Error(`column ${field.name}: type ${field.type} is not supported`);
    type = scalar;
  }
  return field.mode === 'REPEATED' ? { kind: 'array', of: type } : type;
}

/** A row value as a DuckDB literal, checked against the column like BigQuery's insert would. */
function storedLiteral(
  field: BigQueryField,
  value: unknown,
  type = fieldType(field),
): {
  sql: string;
  bytes: number;
} {
  const what = () => `column ${field.name}`;
  if (value === null || value === undefined) {
    if (field.mode === 'REQUIRED')
      throw new Error(`${what()} is REQUIRED but the row has no value`);
    // BigQuery stores a missing repeated value as an empty array.
    return {
      sql: type.kind === 'array' ? `CAST([] AS ${duckType(type)})` : nullOf(type),
      bytes: 0,
    };
  }
  if (type.kind === 'array') {
    if (!Array.isArray(value)) throw new Error(`${what()} is REPEATED: expected an array`);
    const item = { ...field, mode: 'NULLABLE' as const };
    const items = value.map((v) => {
      if (v === null || v === undefined) throw new Error(`${what()}: arrays cannot hold NULL`);
      return storedLiteral(item, v, type.of);
    });
    return {
      sql: `CAST([${items.map((i) => i.sql).join(', ')}] AS ${duckType(type)})`,
      bytes: items.reduce((sum, i) => sum + i.bytes, 0),
    };
  }
  if (type.kind === 'struct') {
    const fields = field.fields ?? [];
    const values = Array.isArray(value) ? value : fields.map((f) => record(value)[f.name]);
    const parts = fields.map((f, i) => storedLiteral(f, values[i]));
    const packed = fields.map((f, i) => `${ident(f.name)} := ${parts[i]?.sql}`).join(', ');
    return {
      sql: `CAST(struct_pack(${packed}) AS ${duckType(type)})`,
      bytes: parts.reduce((sum, p) => sum + p.bytes, 0),
    };
  }
  switch (type.name) {
    case 'STRING':
      if (typeof value !== 'string') throw new Error(`${what()} is STRING: got ${typeof value}`);
      return { sql: quote(value), bytes: 2 + Buffer.byteLength(value) };
    case 'INT64':
      if (typeof value === 'number' && !Number.isSafeInteger(value)) {
        throw new Error(`${what()} is INT64: ${value} is not a safe integer`);
      }
      if (typeof value !== 'number' && typeof value !== 'bigint' && typeof value !== 'string') {
        throw new Error(`${what()} is INT64: got ${typeof value}`);
      }
      return { sql: int64Literal(String(value), what), bytes: 8 };
    case 'FLOAT64':
      if (typeof value !== 'number') throw new Error(`${what()} is FLOAT64: got ${typeof value}`);
      return { sql: `CAST(${quote(floatText(value))} AS DOUBLE)`, bytes: 8 };
    case 'BOOL':
      if (typeof value !== 'boolean') throw new Error(`${what()} is BOOL: got ${typeof value}`);
      return { sql: value ? 'TRUE' : 'FALSE', bytes: 1 };
    case 'DATE': {
      const text = value instanceof Date ? value.toISOString().slice(0, 10) : value;
      if (typeof text !== 'string') throw new Error(`${what()} is DATE: got ${typeof value}`);
      return { sql: dateLiteral(text, what), bytes: 8 };
    }
    case 'TIMESTAMP':
      if (value instanceof Date) {
        return { sql: `make_timestamp(CAST(${value.getTime() * 1000} AS BIGINT))`, bytes: 8 };
      }
      if (typeof value === 'bigint') {
        return { sql: `make_timestamp(CAST(${value} AS BIGINT))`, bytes: 8 };
      }
      if (typeof value !== 'string') throw new Error(`${what()} is TIMESTAMP: got ${typeof value}`);
      return { sql: timestampLiteral(value, what), bytes: 8 };
    case 'NUMERIC':
      if (typeof value !== 'string' && typeof value !== 'number') {
        throw new Error(`${what()} is NUMERIC: got ${typeof value}`);
      }
      return { sql: `CAST(${quote(String(value))} AS DECIMAL(38, 9))`, bytes: 16 };
  }
}

function parseTablePath(path: string): TableReference {
  const parts = path.split('.');
  const [projectId = '', datasetId = '', tableId = ''] = parts;
  if (parts.length !== 3 || parts.some((p) => p === '')) {
    throw new Error(`table path must be project.dataset.table, got ${path}`);
  }
  return { projectId, datasetId, tableId };
}

// ---------------------------------------------------------------------------------------------
// Scripts

type Statement =
  | { kind: 'declare'; names: Word[]; type: BqType | undefined; value: Node[] | undefined }
  | { kind: 'set'; name: Word; value: Node[] }
  | { kind: 'query'; nodes: Node[] };

function parseScript(sql: string): Statement[] {
  const nodes = nest(tokenize(sql), sql);
  const statements: Statement[] = [];
  let declaresAllowed = true;
  for (const part of split(nodes, ';')) {
    const first = part[0];
    if (!first) continue;
    if (isWord(first, 'DECLARE')) {
      if (!declaresAllowed) {
        throw invalid(
          `Variable declarations are allowed only at the start of a block or script at ${at(sql, first.pos)}`,
        );
      }
      statements.push(parseDeclare(part, sql));
      continue;
    }
    declaresAllowed = false;
    if (isWord(first, 'SET')) {
      const name = part[1];
      if (name?.kind !== 'word' || !isOp(part[2], '=')) {
        throw unsupported('SET other than `SET name = expression`');
      }
      statements.push({ kind: 'set', name, value: part.slice(3) });
    } else if (isWord(first, 'SELECT', 'WITH') || isGroup(first)) {
      statements.push({ kind: 'query', nodes: part });
    } else {
      const word = first.kind === 'word' ? first.upper : 'This statement';
      throw unsupported(`${word} (only SELECT queries, DECLARE and SET run)`);
    }
  }
  return statements;
}

function parseDeclare(part: Node[], sql: string): Statement {
  const names: Word[] = [];
  let i = 1;
  for (;;) {
    const name = part[i];
    if (name?.kind !== 'word' || RESERVED.has(name.upper)) {
      throw invalid(`Syntax error: Expected a variable name at ${at(sql, position(name))}`);
    }
    names.push(name);
    i += 1;
    if (!isOp(part[i], ',')) break;
    i += 1;
  }
  let type: BqType | undefined;
  if (i < part.length && !isWord(part[i], 'DEFAULT')) {
    const parsed = parseType(part, i, sql);
    type = parsed.type;
    i = parsed.next;
  }
  let value: Node[] | undefined;
  if (isWord(part[i], 'DEFAULT')) {
    value = part.slice(i + 1);
    i = part.length;
  }
  if (i < part.length) {
    throw invalid(`Syntax error: Unexpected input in DECLARE at ${at(sql, position(part[i]))}`);
  }
  if (!type && !value) throw invalid('DECLARE needs a type or a DEFAULT value');
  if (type && type.kind !== 'scalar') throw unsupported('A variable of type ARRAY or STRUCT');
  return { kind: 'declare', names, type, value };
}

// ---------------------------------------------------------------------------------------------
// Translation

interface Variable {
  type: BqType;
  literal: string;
}

/** Per-statement facts the translator checks names against. */
interface StatementInfo {
  /** Column names of referenced tables and aliases inside subqueries: a variable of such a name
   * would be shadowed somewhere, which the emulator does not model. */
  shadowing: Set<string>;
  /** Select-list aliases of the outermost query: they shadow ORDER BY / GROUP BY references. */
  outerAliases: Set<string>;
  hasPseudoColumnTable: boolean;
}

interface Scope {
  /** Subquery nesting: 0 is the statement's outermost query. */
  depth: number;
  /** The clause being read at this query level: SELECT, FROM, WHERE, GROUP, ORDER... */
  clause: string;
  /** A query's own token list, not a function's arguments or a parenthesised expression. */
  query: boolean;
}

interface TranslateEnv {
  sql: string;
  resolveTable: (parts: string[], pos: number) => TableEntry;
  variables: Map<string, Variable>;
  named: Map<string, unknown>;
  positional: unknown[];
  positionalUsed: { count: number };
  currentDate: string;
  nowMicros: bigint;
  info: StatementInfo;
}

class Translator {
  constructor(private readonly env: TranslateEnv) {}

  query(nodes: Node[]): string {
    return this.seq(nodes, { depth: 0, clause: 'SELECT', query: true });
  }

  expression(nodes: Node[]): string {
    return this.seq(nodes, { depth: 0, clause: 'SELECT', query: false });
  }

  private fail(node: Node | undefined, message: string): BigQuerySqlError {
    return invalid(`${message} at ${at(this.env.sql, position(node))}`);
  }

  private seq(nodes: Node[], scope: Scope): string {
    const out: string[] = [];
    let fromClause = false;
    let expectTable = false;
    let byList = false;
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i] as Node;
      const prev = nodes[i - 1];
      const next = nodes[i + 1];
      if (node.kind === 'group') {
        if (node.open === '[') {
          out.push(this.brackets(node, prev));
          continue;
        }
        const subquery = isWord(node.items[0], 'SELECT', 'WITH');
        const inner = subquery
          ? { depth: scope.depth + 1, clause: 'SELECT', query: true }
          : { ...scope, query: false };
        out.push(`(${this.seq(node.items, inner)})`);
        expectTable = false;
        continue;
      }
      if (expectTable) {
        expectTable = false;
        if (isWord(node, 'UNNEST') && isGroup(next)) {
          i = this.unnestFrom(nodes, i, out, scope);
          continue;
        }
        if (node.kind === 'quoted' || (node.kind === 'word' && !RESERVED.has(node.upper))) {
          i = this.tablePath(nodes, i, out);
          continue;
        }
      }
      switch (node.kind) {
        case 'string':
          out.push(quote(node.value));
          continue;
        case 'bytes':
          throw this.fail(node, 'BYTES literals are not supported by the BigQuery test server');
        case 'number':
          out.push(this.number(node, prev, next, byList));
          continue;
        case 'param':
          out.push(this.named(node));
          continue;
        case 'positional':
          out.push(this.positional(node));
          continue;
        case 'quoted':
          out.push(node.text.split('.').map(ident).join('.'));
          continue;
        case 'op':
          if (node.text === '/') {
            const end = operandEnd(nodes, i + 1);
            if (end === i + 1) throw this.fail(node, 'Syntax error: Expected an operand after "/"');
            out.push(`/ bq_nonzero(${this.seq(nodes.slice(i + 1, end), this.args(scope))})`);
            i = end - 1;
            continue;
          }
          // No `%` in BigQuery (MOD); `^` is XOR there but power in DuckDB.
          if (['%', '^', '<<', '=>', '->'].includes(node.text)) {
            throw this.fail(node, `Syntax error: Unexpected "${node.text}"`);
          }
          if (
            node.text === '*' &&
            scope.query &&
            scope.clause === 'SELECT' &&
            this.env.info.hasPseudoColumnTable
          ) {
            if (selectsAll(prev)) {
              throw this.fail(
                node,
                'SELECT * over an ingestion-time partitioned table (its pseudo-column) is not supported by the BigQuery test server',
              );
            }
          }
          if (node.text === ',' && fromClause) expectTable = true;
          out.push(node.text);
          continue;
        case 'word':
          break;
      }
      const word = node;
      const upper = word.upper;
      if (isGroup(next) && !RESERVED.has(upper) && !isOp(prev, '.')) {
        i = this.call(nodes, i, out, scope);
        continue;
      }
      if (RESERVED.has(upper)) {
        if (REJECTED_KEYWORDS.has(upper))
          throw this.fail(word, `${upper} is not supported by the BigQuery test server`);
        switch (upper) {
          case 'SELECT':
            if (isWord(next, 'AS'))
              throw this.fail(
                word,
                'SELECT AS STRUCT/VALUE is not supported by the BigQuery test server',
              );
            scope.clause = 'SELECT';
            fromClause = false;
            byList = false;
            break;
          case 'FROM':
            if (isWord(prev, 'DISTINCT')) break; // IS [NOT] DISTINCT FROM
            scope.clause = 'FROM';
            fromClause = true;
            expectTable = true;
            byList = false;
            break;
          case 'JOIN':
            expectTable = true;
            break;
          case 'BY':
            byList = true;
            break;
          case 'UNION':
          case 'INTERSECT':
          case 'EXCEPT': {
            if (upper === 'EXCEPT' && isOp(prev, '*')) {
              out.push('EXCLUDE');
              continue;
            }
            const mode = nodes[i + 1];
            if (isWord(mode, 'DISTINCT')) {
              out.push(upper);
            } else if (isWord(mode, 'ALL') && upper === 'UNION') {
              out.push('UNION ALL');
            } else {
              throw this.fail(
                word,
                `Syntax error: Expected keyword DISTINCT${upper === 'UNION' ? ' or keyword ALL' : ''} after ${upper}`,
              );
            }
            i += 1;
            scope.clause = 'SELECT';
            fromClause = false;
            byList = false;
            continue;
          }
          case 'CURRENT':
            if (isWord(next, 'ROW')) {
              out.push('CURRENT ROW');
              i += 1;
              continue;
            }
            break;
          case 'NULLS':
            if (isWord(next, 'FIRST', 'LAST') && next?.kind === 'word') {
              out.push(`NULLS ${next.upper}`);
              i += 1;
              continue;
            }
            break;
          case 'IN':
            if (isWord(next, 'UNNEST') && isGroup(nodes[i + 2])) {
              const arg = nodes[i + 2] as Group;
              out.push(`IN (SELECT unnest(${this.seq(arg.items, this.args(scope))}))`);
              i += 2;
              continue;
            }
            break;
          case 'LIKE': {
            const end = operandEnd(nodes, i + 1);
            out.push(`LIKE ${this.seq(nodes.slice(i + 1, end), this.args(scope))} ESCAPE '\\'`);
            i = end - 1;
            continue;
          }
          case 'INTERVAL':
            throw this.fail(
              word,
              'INTERVAL outside DATE_ADD/DATE_SUB/TIMESTAMP_ADD/TIMESTAMP_SUB is not supported by the BigQuery test server',
            );
          case 'ARRAY':
            i = this.arrayLiteral(nodes, i, out, scope);
            continue;
          case 'STRUCT':
            if (isOp(next, '<')) {
              i = this.typedStruct(nodes, i, out, scope);
              continue;
            }
            break;
          case 'OVER':
            if (next?.kind === 'word' || next?.kind === 'quoted') {
              out.push(`OVER ${ident(next.text)}`);
              i += 1;
              continue;
            }
            break;
          case 'WINDOW':
            scope.clause = 'WINDOW';
            byList = false;
            break;
          default:
            if (CLAUSES.has(upper)) {
              scope.clause = upper;
              fromClause = false;
              byList = false;
            }
        }
        if (CLAUSES.has(upper) && upper !== 'FROM' && upper !== 'SELECT') fromClause = false;
        if (['IF', 'CAST', 'EXTRACT', 'UNNEST', 'STRUCT'].includes(upper)) {
          if (!isGroup(next)) throw this.fail(word, `Syntax error: Expected "(" after ${upper}`);
          i = this.call(nodes, i, out, scope);
          continue;
        }
        out.push(upper);
        continue;
      }
      // A non-reserved word: a literal prefix, a contextual keyword, a variable or a name.
      if ((upper === 'DATE' || upper === 'TIMESTAMP') && next?.kind === 'string') {
        const what = () => `${upper} literal`;
        out.push(
          upper === 'DATE' ? dateLiteral(next.value, what) : timestampLiteral(next.value, what),
        );
        i += 1;
        continue;
      }
      if (
        ['DATETIME', 'TIME', 'JSON', 'NUMERIC', 'BIGNUMERIC', 'RANGE'].includes(upper) &&
        next?.kind === 'string'
      ) {
        throw this.fail(word, `${upper} literals are not supported by the BigQuery test server`);
      }
      if (upper === 'CURRENT_DATE' && !isOp(prev, '.')) {
        out.push(`DATE '${this.env.currentDate}'`);
        continue;
      }
      if (upper === 'CURRENT_TIMESTAMP' && !isOp(prev, '.')) {
        out.push(`make_timestamp(CAST(${this.env.nowMicros} AS BIGINT))`);
        continue;
      }
      if (upper === 'OFFSET' && (next?.kind === 'number' || next?.kind === 'param')) {
        out.push('OFFSET');
        continue;
      }
      if (upper === 'SAFE' && isOp(next, '.')) {
        throw this.fail(
          word,
          'SAFE.-prefixed functions are not supported by the BigQuery test server',
        );
      }
      const variable = this.variable(nodes, i, scope);
      out.push(variable ?? ident(word.text));
    }
    return out.join(' ');
  }

  /** The scope of a function's arguments or an operand: same query level, not a query list. */
  private args(scope: Scope): Scope {
    return { ...scope, query: false };
  }

  private variable(nodes: Node[], i: number, scope: Scope): string | undefined {
    const word = nodes[i];
    if (word?.kind !== 'word') return undefined;
    const prev = nodes[i - 1];
    const next = nodes[i + 1];
    if (isOp(prev, '.') || isOp(next, '.') || isWord(prev, 'AS', 'OVER', 'WINDOW'))
      return undefined;
    if (isWord(next, 'AS') && isGroup(nodes[i + 2])) return undefined; // a CTE or window name
    const key = word.text.toLowerCase();
    const variable = this.env.variables.get(key);
    if (!variable) return undefined;
    const { shadowing, outerAliases } = this.env.info;
    const outerShadow =
      scope.depth === 0 &&
      outerAliases.has(key) &&
      ['GROUP', 'ORDER', 'HAVING', 'QUALIFY', 'WINDOW'].includes(scope.clause);
    if (shadowing.has(key) || outerShadow) {
      throw this.fail(
        word,
        `Variable ${word.text} has the name of a column or alias of this statement (BigQuery resolves such names to the column), which the BigQuery test server does not model`,
      );
    }
    return `(${variable.literal})`;
  }

  private number(
    node: Token & { kind: 'number' },
    prev: Node | undefined,
    next: Node | undefined,
    byList: boolean,
  ): string {
    const text = node.text;
    if (/^0[xX]/.test(text) || /^\d+$/.test(text)) {
      const literal = int64Literal(text, () => `Invalid integer literal ${text}`);
      // `GROUP BY 1` / `ORDER BY 2` are positions, not values.
      const ordinal =
        byList &&
        (isWord(prev, 'BY') || isOp(prev, ',')) &&
        (next === undefined ||
          isOp(next, ',') ||
          isWord(next, 'ASC', 'DESC', 'NULLS') ||
          (next.kind === 'word' && CLAUSES.has(next.upper)));
      return ordinal ? String(BigInt(text)) : literal;
    }
    // BigQuery's float literals are FLOAT64; DuckDB would make them exact DECIMALs.
    return `CAST('${text}' AS DOUBLE)`;
  }

  private named(node: Token & { kind: 'param' }): string {
    const key = node.name.toLowerCase();
    if (!this.env.named.has(key)) {
      throw this.fail(node, `Query parameter '${node.name}' not found`);
    }
    const parameter = record(this.env.named.get(key));
    return `(${parameterLiteral(parameter.parameterType, parameter.parameterValue, () => `Query parameter '${node.name}'`)})`;
  }

  private positional(node: Token): string {
    const index = this.env.positionalUsed.count;
    const parameter = this.env.positional[index];
    if (parameter === undefined) throw this.fail(node, 'Positional parameter not found');
    this.env.positionalUsed.count += 1;
    const p = record(parameter);
    return `(${parameterLiteral(p.parameterType, p.parameterValue, () => `Positional parameter ${index + 1}`)})`;
  }

  private tablePath(nodes: Node[], i: number, out: string[]): number {
    const { parts, end: j } = readPath(nodes, i);
    const first = nodes[i];
    if (isWord(nodes[j + 1], 'FOR') || isGroup(nodes[j + 1])) {
      throw this.fail(
        first,
        'This table reference form is not supported by the BigQuery test server',
      );
    }
    if (parts.length === 1) {
      out.push(ident(parts[0] ?? '')); // a CTE; DuckDB reports a missing one
    } else {
      out.push(duckTable(this.env.resolveTable(parts, position(first)).ref));
    }
    return j;
  }

  private unnestFrom(nodes: Node[], i: number, out: string[], scope: Scope): number {
    const arg = nodes[i + 1] as Group;
    let j = i + 2;
    if (isWord(nodes[j], 'AS')) j += 1;
    const alias = nodes[j];
    if (alias?.kind !== 'word' && alias?.kind !== 'quoted') {
      throw this.fail(
        nodes[i],
        'UNNEST without an alias is not supported by the BigQuery test server',
      );
    }
    if (alias.kind === 'word' && RESERVED.has(alias.upper)) {
      throw this.fail(
        nodes[i],
        'UNNEST without an alias is not supported by the BigQuery test server',
      );
    }
    const array = this.seq(arg.items, this.args(scope));
    const columns = [`unnest(${array}) AS ${ident(alias.text)}`];
    j += 1;
    if (isWord(nodes[j], 'WITH') && isWord(nodes[j + 1], 'OFFSET')) {
      j += 2;
      if (isWord(nodes[j], 'AS')) j += 1;
      const offset = nodes[j];
      let name = 'offset';
      if (offset?.kind === 'quoted' || (offset?.kind === 'word' && !RESERVED.has(offset.upper))) {
        name = offset.text;
        j += 1;
      }
      columns.push(`generate_subscripts(${array}, 1) - 1 AS ${ident(name)}`);
    }
    out.push(`(SELECT ${columns.join(', ')}) AS ${ident(`unnest_${alias.text}`)}`);
    return j - 1;
  }

  private brackets(group: Group, prev: Node | undefined): string {
    const subscript =
      prev !== undefined &&
      (prev.kind === 'word' ||
        prev.kind === 'quoted' ||
        prev.kind === 'group' ||
        prev.kind === 'param');
    if (!subscript)
      return `[${this.seq(group.items, { depth: 0, clause: 'SELECT', query: false })}]`;
    const [fn, arg, ...rest] = group.items;
    if (rest.length === 0 && isWord(fn, 'SAFE_OFFSET', 'SAFE_ORDINAL') && isGroup(arg)) {
      const index = this.seq(arg.items, { depth: 0, clause: 'SELECT', query: false });
      return isWord(fn, 'SAFE_OFFSET') ? `[(${index}) + 1]` : `[${index}]`;
    }
    throw this.fail(
      group,
      'Array subscripts other than SAFE_OFFSET/SAFE_ORDINAL are not supported by the BigQuery test server',
    );
  }

  private arrayLiteral(nodes: Node[], i: number, out: string[], scope: Scope): number {
    const next = nodes[i + 1];
    if (isGroup(next)) {
      out.push(
        `ARRAY(${this.seq(next.items, { depth: scope.depth + 1, clause: 'SELECT', query: true })})`,
      );
      return i + 1;
    }
    const bracket = nodes[i + 1];
    if (bracket?.kind === 'group' && bracket.open === '[') {
      out.push(`[${this.seq(bracket.items, this.args(scope))}]`);
      return i + 1;
    }
    const { type, next: after } = parseType(nodes, i, this.env.sql);
    const items = nodes[after];
    if (!isGroup(items, '['))
      throw this.fail(nodes[i], 'Syntax error: Expected "[" after the ARRAY type');
    out.push(`CAST([${this.seq(items.items, this.args(scope))}] AS ${duckType(type)})`);
    return after;
  }

  private typedStruct(nodes: Node[], i: number, out: string[], scope: Scope): number {
    const { type, next } = parseType(nodes, i, this.env.sql);
    const args = nodes[next];
    if (!isGroup(args) || type.kind !== 'struct')
      throw this.fail(nodes[i], 'Syntax error: Expected "(" after the STRUCT type');
    const values = split(args.items, ',');
    if (values.length !== type.fields.length)
      throw this.fail(nodes[i], 'STRUCT type and values differ in length');
    const packed = type.fields.map(
      (f, k) =>
        `${ident(f.name)} := CAST(${this.seq(values[k] ?? [], this.args(scope))} AS ${duckType(f.type)})`,
    );
    out.push(`struct_pack(${packed.join(', ')})`);
    return next;
  }

  /** A function call `name(args)` at nodes[i]; returns the index of its last node. */
  private call(nodes: Node[], i: number, out: string[], scope: Scope): number {
    const word = nodes[i] as Token & { kind: 'word' };
    const group = nodes[i + 1] as Group;
    const name = word.upper;
    const inner = this.args(scope);
    const args = group.items.length === 0 ? [] : split(group.items, ',');
    const arg = (k: number) => this.seq(args[k] ?? [], { ...inner });
    const arity = (...allowed: number[]) => {
      if (!allowed.includes(args.length)) {
        throw this.fail(
          word,
          `No matching signature for function ${name} with ${args.length} argument(s)`,
        );
      }
    };
    let sql: string;
    switch (name) {
      case 'IF':
        arity(3);
        sql = `(CASE WHEN ${arg(0)} THEN ${arg(1)} ELSE ${arg(2)} END)`;
        break;
      case 'CAST':
      case 'SAFE_CAST':
        sql = this.cast(group, name === 'SAFE_CAST', inner);
        break;
      case 'EXTRACT':
        sql = this.extract(group, inner);
        break;
      case 'UNNEST':
        throw this.fail(
          word,
          'UNNEST outside FROM and IN is not supported by the BigQuery test server',
        );
      case 'STRUCT':
        sql = this.struct(word, args, inner);
        break;
      case 'ARRAY_AGG':
        return this.arrayAgg(nodes, i, out, inner);
      case 'CURRENT_DATE':
        arity(0);
        sql = `DATE '${this.env.currentDate}'`;
        break;
      case 'CURRENT_TIMESTAMP':
        arity(0);
        sql = `make_timestamp(CAST(${this.env.nowMicros} AS BIGINT))`;
        break;
      case 'DATE_ADD':
      case 'DATE_SUB':
      case 'TIMESTAMP_ADD':
      case 'TIMESTAMP_SUB': {
        arity(2);
        const interval = this.interval(
          args[1] ?? [],
          name.startsWith('DATE') ? DATE_PARTS : TIME_PARTS,
          word,
        );
        const sign = name.endsWith('ADD') ? '+' : '-';
        sql = name.startsWith('DATE')
          ? `CAST((${arg(0)}) ${sign} ${interval} AS DATE)`
          : `((${arg(0)}) ${sign} ${interval})`;
        break;
      }
      case 'DATE_DIFF':
      case 'TIMESTAMP_DIFF': {
        arity(3);
        const part = this.part(
          args[2],
          name === 'DATE_DIFF' ? DIFF_DATE_PARTS : new Set(Object.keys(TIME_PARTS)),
          word,
        );
        // DATE_DIFF counts part boundaries (date_diff); TIMESTAMP_DIFF whole parts (date_sub).
        const fn = name === 'DATE_DIFF' ? 'date_diff' : 'date_sub';
        sql = `${fn}('${part.toLowerCase()}', ${arg(1)}, ${arg(0)})`;
        break;
      }
      case 'DATE_TRUNC':
      case 'TIMESTAMP_TRUNC': {
        arity(2);
        const parts =
          name === 'DATE_TRUNC'
            ? new Set(TRUNC_DATE_PARTS.keys())
            : new Set([...Object.keys(TIME_PARTS), 'MONTH', 'QUARTER', 'YEAR']);
        const part = this.part(args[1], parts, word);
        const duckPart = TRUNC_DATE_PARTS.get(part) ?? part.toLowerCase();
        sql =
          name === 'DATE_TRUNC'
            ? `CAST(date_trunc('${duckPart}', ${arg(0)}) AS DATE)`
            : `date_trunc('${duckPart}', ${arg(0)})`;
        break;
      }
      case 'DATE':
        arity(1, 3);
        sql =
          args.length === 1
            ? `CAST(${arg(0)} AS DATE)`
            : `make_date(CAST(${arg(0)} AS BIGINT), CAST(${arg(1)} AS BIGINT), CAST(${arg(2)} AS BIGINT))`;
        break;
      case 'TIMESTAMP':
        arity(1);
        sql = `bq_timestamp(${arg(0)})`;
        break;
      case 'TIMESTAMP_MICROS':
      case 'TIMESTAMP_MILLIS':
      case 'TIMESTAMP_SECONDS': {
        arity(1);
        const scale = {
          TIMESTAMP_MICROS: '',
          TIMESTAMP_MILLIS: ' * 1000',
          TIMESTAMP_SECONDS: ' * 1000000',
        }[name];
        sql = `make_timestamp(CAST(${arg(0)} AS BIGINT)${scale})`;
        break;
      }
      case 'CONCAT':
        if (args.length === 0) throw this.fail(word, 'No matching signature for function CONCAT');
        // BigQuery's CONCAT is NULL when any argument is; DuckDB's skips NULLs, || does not.
        sql = `(${args.map((_, k) => `(${arg(k)})`).join(' || ')})`;
        break;
      case 'GREATEST':
      case 'LEAST': {
        if (args.length === 0) throw this.fail(word, `No matching signature for function ${name}`);
        const values = args.map((_, k) => arg(k));
        sql = `(CASE WHEN ${values.map((v) => `(${v}) IS NULL`).join(' OR ')} THEN NULL ELSE ${name.toLowerCase()}(${values.join(', ')}) END)`;
        break;
      }
      case 'MOD':
        arity(2);
        sql = `((${arg(0)}) % bq_nonzero(${arg(1)}))`;
        break;
      case 'DIV':
        arity(2);
        sql = `((${arg(0)}) // bq_nonzero(${arg(1)}))`;
        break;
      case 'SAFE_DIVIDE':
        arity(2);
        sql = `(CASE WHEN (${arg(1)}) = 0 THEN NULL ELSE (${arg(0)}) / (${arg(1)}) END)`;
        break;
      case 'SUBSTR':
      case 'SUBSTRING': {
        arity(2, 3);
        const start = `(CASE WHEN (${arg(1)}) = 0 THEN 1 ELSE (${arg(1)}) END)`;
        sql =
          args.length === 2
            ? `substr(${arg(0)}, ${start})`
            : `substr(${arg(0)}, ${start}, ${arg(2)})`;
        break;
      }
      case 'REGEXP_REPLACE':
        arity(3);
        sql = `regexp_replace(${arg(0)}, ${arg(1)}, ${arg(2)}, 'g')`;
        break;
      default: {
        const same = SAME_FUNCTIONS.get(name);
        if (!same) {
          throw this.fail(
            word,
            `Function ${word.text} is not supported by the BigQuery test server`,
          );
        }
        sql = `${same}(${this.seq(group.items, inner)})`;
      }
    }
    out.push(sql);
    return i + 1;
  }

  private interval(nodes: Node[], parts: Record<string, (n: string) => string>, fn: Node): string {
    const last = nodes[nodes.length - 1];
    if (!isWord(nodes[0], 'INTERVAL') || last?.kind !== 'word' || nodes.length < 3) {
      throw this.fail(fn, 'Syntax error: Expected INTERVAL n <part>');
    }
    const make = parts[last.upper];
    if (!make)
      throw this.fail(
        last,
        `Date part ${last.text} is not supported here by the BigQuery test server`,
      );
    return make(`(${this.seq(nodes.slice(1, -1), { depth: 0, clause: 'SELECT', query: false })})`);
  }

  private part(nodes: Node[] | undefined, allowed: Set<string>, fn: Node): string {
    const node = nodes?.[0];
    if (nodes?.length !== 1 || node?.kind !== 'word')
      throw this.fail(fn, 'Syntax error: Expected a date part');
    if (!allowed.has(node.upper)) {
      throw this.fail(
        node,
        `Date part ${node.text} is not supported here by the BigQuery test server`,
      );
    }
    return node.upper;
  }

  private cast(group: Group, safe: boolean, scope: Scope): string {
    const items = group.items;
    let asIndex = -1;
    for (let k = items.length - 1; k >= 0; k--) {
      if (isWord(items[k], 'AS')) {
        asIndex = k;
        break;
      }
    }
    if (asIndex < 1) throw this.fail(group, 'Syntax error: Expected CAST(expression AS type)');
    const { type, next } = parseType(items, asIndex + 1, this.env.sql);
    if (next !== items.length)
      throw this.fail(
        items[next],
        'Syntax error: Unexpected input after the CAST type (FORMAT is not supported)',
      );
    const value = this.seq(items.slice(0, asIndex), this.args(scope));
    if (type.kind === 'scalar') {
      if (type.name === 'STRING') return `bq_string(${value})`;
      if (type.name === 'INT64') return safe ? `bq_safe_int64(${value})` : `bq_int64(${value})`;
      if (type.name === 'TIMESTAMP')
        return safe ? `bq_safe_timestamp(${value})` : `bq_timestamp(${value})`;
    }
    return `${safe ? 'TRY_CAST' : 'CAST'}(${value} AS ${duckType(type)})`;
  }

  private extract(group: Group, scope: Scope): string {
    const [part, from, ...rest] = group.items;
    if (part?.kind !== 'word' || !isWord(from, 'FROM') || rest.length === 0) {
      throw this.fail(group, 'Syntax error: Expected EXTRACT(part FROM expression)');
    }
    const value = this.seq(rest, this.args(scope));
    if (part.upper === 'DATE') return `CAST(${value} AS DATE)`;
    if (part.upper === 'DAYOFWEEK') return `(dayofweek(${value}) + 1)`;
    const duckPart = EXTRACT_PARTS.get(part.upper);
    if (!duckPart)
      throw this.fail(part, `EXTRACT(${part.text}) is not supported by the BigQuery test server`);
    return `extract(${duckPart} FROM ${value})`;
  }

  private struct(word: Node, args: Node[][], scope: Scope): string {
    if (args.length === 0)
      throw this.fail(word, 'An empty STRUCT() is not supported by the BigQuery test server');
    const fields = args.map((a) => {
      const last = a[a.length - 1];
      let valueNodes = a;
      let name: string | undefined;
      if (
        a.length >= 3 &&
        isWord(a[a.length - 2], 'AS') &&
        (last?.kind === 'word' || last?.kind === 'quoted')
      ) {
        name = last.text;
        valueNodes = a.slice(0, -2);
      } else if (last?.kind === 'word' || last?.kind === 'quoted') {
        // A path such as `t.col` names its field after its last part.
        if (isDottedName(a)) name = last.text.split('.').at(-1);
      }
      if (name === undefined) {
        throw this.fail(
          a[0],
          'STRUCT fields without a name are not supported by the BigQuery test server',
        );
      }
      return `${ident(name)} := ${this.seq(valueNodes, this.args(scope))}`;
    });
    return `struct_pack(${fields.join(', ')})`;
  }

  private arrayAgg(nodes: Node[], i: number, out: string[], scope: Scope): number {
    const group = nodes[i + 1] as Group;
    let items = group.items;
    let ignoreNulls = false;
    const ignoreAt = items.findIndex(
      (n, k) => isWord(n, 'IGNORE', 'RESPECT') && isWord(items[k + 1], 'NULLS'),
    );
    if (ignoreAt >= 0) {
      ignoreNulls = isWord(items[ignoreAt], 'IGNORE');
      items = [...items.slice(0, ignoreAt), ...items.slice(ignoreAt + 2)];
    }
    const limit = items.find((n) => isWord(n, 'LIMIT'));
    if (limit)
      throw this.fail(limit, 'ARRAY_AGG with LIMIT is not supported by the BigQuery test server');
    let aggregate = `array_agg(${this.seq(items, this.args(scope))})`;
    let last = i + 1;
    if (isWord(nodes[i + 2], 'OVER')) {
      const window = nodes[i + 3];
      if (isGroup(window)) aggregate += ` OVER (${this.seq(window.items, this.args(scope))})`;
      else if (window?.kind === 'word' || window?.kind === 'quoted')
        aggregate += ` OVER ${ident(window.text)}`;
      else throw this.fail(nodes[i + 2], 'Syntax error: Expected a window after OVER');
      last = i + 3;
    }
    out.push(
      ignoreNulls
        ? `list_filter(${aggregate}, e -> e IS NOT NULL)`
        : `bq_nonnull_array(${aggregate})`,
    );
    return last;
  }
}

/** The index after the operand of a binary operator that starts at nodes[i]. */
function operandEnd(nodes: Node[], i: number): number {
  let j = i;
  while (isOp(nodes[j], '-', '+', '~')) j += 1;
  const node = nodes[j];
  if (node === undefined) return i;
  if (isWord(node, 'CASE')) {
    let depth = 0;
    for (; j < nodes.length; j++) {
      if (isWord(nodes[j], 'CASE')) depth += 1;
      if (isWord(nodes[j], 'END')) depth -= 1;
      if (depth === 0) break;
    }
    j += 1;
  } else if (isWord(node, 'DATE', 'TIMESTAMP') && nodes[j + 1]?.kind === 'string') {
    j += 2;
  } else if (node.kind === 'word' && isGroup(nodes[j + 1])) {
    j += 2;
    if (isWord(nodes[j], 'OVER')) j += 2;
  } else if (node.kind === 'word' && (node.upper === 'ARRAY' || node.upper === 'STRUCT')) {
    return i; // typed constructors as operands: not worth modelling
  } else {
    j += 1;
  }
  for (;;) {
    if (isOp(nodes[j], '.') && (nodes[j + 1]?.kind === 'word' || nodes[j + 1]?.kind === 'quoted'))
      j += 2;
    else if (isGroup(nodes[j], '[')) j += 1;
    else break;
  }
  return j;
}

// ---------------------------------------------------------------------------------------------
// Static analysis: referenced tables, aliases, output names

interface PathRef {
  parts: string[];
  pos: number;
}

/** Table paths in FROM/JOIN positions, and words following AS, at every level. */
function analyse(nodes: Node[]): {
  paths: PathRef[];
  innerAliases: Set<string>;
  outerAliases: Set<string>;
  words: Set<string>;
  hasStar: boolean;
} {
  const paths: PathRef[] = [];
  const innerAliases = new Set<string>();
  const outerAliases = new Set<string>();
  const words = new Set<string>();
  let hasStar = false;
  const walk = (seq: Node[], depth: number, queryLevel: boolean) => {
    let fromClause = false;
    let expectTable = false;
    for (let i = 0; i < seq.length; i++) {
      const node = seq[i] as Node;
      if (node.kind === 'group') {
        const subquery = isWord(node.items[0], 'SELECT', 'WITH');
        walk(node.items, subquery ? depth + 1 : depth, subquery);
        expectTable = false;
        continue;
      }
      if (node.kind === 'word' || node.kind === 'quoted') {
        for (const part of node.text.split('.')) words.add(part.toLowerCase());
      }
      if (node.kind === 'op' && node.text === '*' && queryLevel) {
        if (selectsAll(seq[i - 1])) hasStar = true;
      }
      if (expectTable) {
        expectTable = false;
        if (node.kind === 'quoted' || (node.kind === 'word' && !RESERVED.has(node.upper))) {
          const { parts, end } = readPath(seq, i);
          if (parts.length > 1) paths.push({ parts, pos: node.pos });
          i = end;
          continue;
        }
      }
      if (isWord(node, 'FROM') && !isWord(seq[i - 1], 'DISTINCT') && queryLevel) {
        fromClause = true;
        expectTable = true;
      } else if (isWord(node, 'JOIN')) {
        expectTable = true;
      } else if (isOp(node, ',') && fromClause) {
        expectTable = true;
      } else if (node.kind === 'word' && CLAUSES.has(node.upper) && node.upper !== 'FROM') {
        fromClause = false;
      } else if (isWord(node, 'AS') && queryLevel) {
        const name = seq[i + 1];
        if ((name?.kind === 'word' || name?.kind === 'quoted') && !isGroup(seq[i + 2])) {
          (depth === 0 ? outerAliases : innerAliases).add(name.text.toLowerCase());
        }
      }
    }
  };
  walk(nodes, 0, true);
  return { paths, innerAliases, outerAliases, words, hasStar };
}

/** BigQuery's names for the outermost select list (f0_, f1_ for unnamed), or undefined with `*`. */
function outputNames(nodes: Node[]): string[] | undefined {
  let i = 0;
  if (isWord(nodes[0], 'WITH')) {
    // Skip `WITH [RECURSIVE] name AS (...), name AS (...)`: the main query follows.
    i = isWord(nodes[1], 'RECURSIVE') ? 2 : 1;
    while (isWord(nodes[i + 1], 'AS') && isGroup(nodes[i + 2])) {
      i += 3;
      if (!isOp(nodes[i], ',')) break;
      i += 1;
    }
  }
  const first = nodes[i];
  if (isGroup(first)) return outputNames(first.items);
  if (!isWord(first, 'SELECT')) return undefined;
  i += 1;
  if (isWord(nodes[i], 'DISTINCT', 'ALL')) i += 1;
  const list: Node[] = [];
  for (; i < nodes.length; i++) {
    const node = nodes[i] as Node;
    if (
      node.kind === 'word' &&
      CLAUSES.has(node.upper) &&
      !(node.upper === 'EXCEPT' && isOp(nodes[i - 1], '*'))
    )
      break;
    list.push(node);
  }
  const names: string[] = [];
  let anonymous = 0;
  for (const item of split(list, ',')) {
    const last = item[item.length - 1];
    const beforeLast = item[item.length - 2];
    if (item.some((n, k) => isOp(n, '*') && (k === 0 || isOp(item[k - 1], '.')))) return undefined;
    const named = last?.kind === 'word' || last?.kind === 'quoted';
    if (named && (isWord(beforeLast, 'AS') || isDottedName(item))) {
      names.push(last.text.split('.').at(-1) ?? last.text);
    } else if (
      named &&
      item.length >= 2 &&
      !isOp(beforeLast) &&
      !(last.kind === 'word' && RESERVED.has(last.upper))
    ) {
      names.push(last.text); // implicit alias: `expr name`
    } else {
      names.push(`f${anonymous}_`);
      anonymous += 1;
    }
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// The engine

/** Tables registered by the test, and the DuckDB database that runs queries on them. */
export class BigQuerySqlEngine {
  private readonly tables = new Map<string, TableEntry>();
  private currentDate: string | undefined;
  private database: Promise<{ instance: DuckDBInstance; connection: DuckDBConnection }> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  /** True once any table was registered. */
  get hasTables(): boolean {
    return this.tables.size > 0;
  }

  /** Registers (or replaces) a table; rows are checked against the schema now. */
  createTable(
    path: string,
    schema: BigQueryField[],
    rows: unknown[][] | Record<string, unknown>[] = [],
  ): void {
    const ref = parseTablePath(path);
    const seen = new Set<string>();
    for (const field of schema) {
      const key = field.name.toLowerCase();
      if (seen.has(key)) throw new Error(`duplicate column ${field.name} in ${path}`);
      seen.add(key);
      fieldType(field);
    }
    const entry: TableEntry = {
      ref,
      schema,
      tuples: [],
      columnBytes: schema.map(() => 0),
      loaded: 0,
      created: false,
    };
    appendRows(entry, rows);
    this.tables.set(tableKey(ref), entry);
  }

  /** Appends rows to a registered table. */
  insertRows(path: string, rows: unknown[][] | Record<string, unknown>[]): void {
    const entry = this.tables.get(tableKey(parseTablePath(path)));
    if (!entry) throw new Error(`table ${path} is not registered (createTable first)`);
    appendRows(entry, rows);
  }

  /** What CURRENT_DATE() returns; undefined = today's UTC date. */
  setCurrentDate(date: string | undefined): void {
    if (date !== undefined) dateLiteral(date, () => 'setCurrentDate');
    this.currentDate = date;
  }

  /** Whether a query names a `dataset.table` (true also when it cannot even be tokenised). */
  namesTables(request: SqlRequest): boolean {
    try {
      return analyse(nest(tokenize(request.query), request.query)).paths.length > 0;
    } catch {
      return true;
    }
  }

  /** Runs a query or script; rows are the key statement's. */
  run(request: SqlRequest): Promise<SqlResult> {
    return this.exclusive(async (connection) => {
      const outcome = await this.execute(connection, request, false);
      return { ...outcome, schema: outcome.schema ?? [], rows: outcome.rows ?? [] };
    });
  }

  /** Validates a query or script without running its statements. */
  dryRun(request: SqlRequest): Promise<SqlStatistics> {
    return this.exclusive(async (connection) => {
      const { rows: _rows, ...statistics } = await this.execute(connection, request, true);
      return statistics;
    });
  }

  /** Closes the DuckDB database, if one was opened. */
  async close(): Promise<void> {
    const database = this.database;
    this.database = undefined;
    if (!database) return;
    await this.queue.catch(() => undefined);
    const { instance, connection } = await database.catch(() => ({
      instance: undefined,
      connection: undefined,
    }));
    connection?.closeSync();
    instance?.closeSync();
  }

  private exclusive<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const { connection } = await this.open();
      await this.load(connection);
      return work(connection);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private open(): Promise<{ instance: DuckDBInstance; connection: DuckDBConnection }> {
    this.database ??= (async () => {
      const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
      const connection = await instance.connect();
      // BigQuery sorts NULLs first ascending and last descending; timestamps are UTC.
      await connection.run("SET default_null_order = 'nulls_first_on_asc_last_on_desc'");
      await connection.run("SET TimeZone = 'UTC'");
      for (const macro of MACROS) await connection.run(macro);
      return { instance, connection };
    })();
    this.database.catch(() => {
      this.database = undefined;
    });
    return this.database;
  }

  private async load(connection: DuckDBConnection): Promise<void> {
    for (const entry of this.tables.values()) {
      const name = duckTable(entry.ref);
      if (!entry.created) {
        const columns = entry.schema.map((f) => `${ident(f.name)} ${duckType(fieldType(f))}`);
        await connection.run(
          `CREATE SCHEMA IF NOT EXISTS ${ident(`${entry.ref.projectId}.${entry.ref.datasetId}`)}`,
        );
        await connection.run(`CREATE OR REPLACE TABLE ${name} (${columns.join(', ')})`);
        entry.created = true;
        entry.loaded = 0;
      }
      while (entry.loaded < entry.tuples.length) {
        const batch = entry.tuples.slice(entry.loaded, entry.loaded + 500);
        await connection.run(`INSERT INTO ${name} VALUES ${batch.join(', ')}`);
        entry.loaded += batch.length;
      }
    }
  }

  private reference(parts: string[], request: SqlRequest): TableReference | undefined {
    if (parts.length === 3) {
      const [projectId = '', datasetId = '', tableId = ''] = parts;
      return { projectId, datasetId, tableId };
    }
    if (parts.length === 2) {
      const [datasetId = '', tableId = ''] = parts;
      return { projectId: request.projectId, datasetId, tableId };
    }
    return undefined;
  }

  private async execute(
    connection: DuckDBConnection,
    request: SqlRequest,
    dryRun: boolean,
  ): Promise<SqlStatistics & { rows?: unknown[][] }> {
    const statements = parseScript(request.query);
    if (statements.length === 0) throw invalid('Syntax error: Unexpected end of script');
    const { named, positional } = splitParameters(request.parameters);
    const variables = new Map<string, Variable>();
    const referenced = new Map<string, TableEntry>();
    let bytes = 0;
    // One instant per job, as CURRENT_TIMESTAMP() is in BigQuery.
    const nowMicros = BigInt(Date.now()) * 1000n;
    const firstSelect = String(request.keyResultStatement ?? '').toUpperCase() === 'FIRST_SELECT';
    let key: { schema: BigQueryField[]; rows: unknown[][] } | undefined;
    const env = (nodes: Node[]): TranslateEnv => {
      const facts = analyse(nodes);
      const shadowing = new Set(facts.innerAliases);
      let hasPseudoColumnTable = false;
      for (const path of facts.paths) {
        const entry = this.resolve(path.parts, path.pos, request);
        referenced.set(tableKey(entry.ref), entry);
        entry.schema.forEach((field, c) => {
          shadowing.add(field.name.toLowerCase());
          if (facts.hasStar || facts.words.has(field.name.toLowerCase()))
            bytes += entry.columnBytes[c] ?? 0;
          if (field.name.toUpperCase().startsWith('_PARTITION')) hasPseudoColumnTable = true;
        });
      }
      return {
        sql: request.query,
        resolveTable: (parts, pos) => this.resolve(parts, pos, request),
        variables,
        named,
        positional,
        positionalUsed: { count: 0 },
        currentDate: this.currentDate ?? new Date().toISOString().slice(0, 10),
        nowMicros,
        info: { shadowing, outerAliases: facts.outerAliases, hasPseudoColumnTable },
      };
    };
    const evaluate = async (nodes: Node[], type: BqType | undefined): Promise<Variable> => {
      const expression = new Translator(env(nodes)).expression(nodes);
      const sql = type
        ? `SELECT CAST((${expression}) AS ${duckType(type)})`
        : `SELECT (${expression})`;
      if (dryRun) {
        const columns = await describe(connection, sql);
        const valueType = type ?? scalarOfField(columns[0] ?? { name: '', type: 'INTEGER' });
        return { type: valueType, literal: nullOf(valueType) };
      }
      const { schema, rows } = await runSql(connection, sql);
      const valueType = type ?? scalarOfField(schema[0] ?? { name: '', type: 'INTEGER' });
      return { type: valueType, literal: valueLiteral(rows[0]?.[0] ?? null, valueType) };
    };
    let lastSchema: BigQueryField[] | undefined;
    for (const statement of statements) {
      if (statement.kind === 'declare') {
        const { type } = statement;
        let value: Variable;
        if (statement.value) value = await evaluate(statement.value, type);
        else if (type) value = { type, literal: nullOf(type) };
        else throw invalid('DECLARE needs a type or a DEFAULT value');
        for (const name of statement.names) {
          const key = name.text.toLowerCase();
          if (variables.has(key)) {
            throw invalid(
              `Variable '${name.text}' has already been declared at ${at(request.query, name.pos)}`,
            );
          }
          variables.set(key, value);
        }
      } else if (statement.kind === 'set') {
        const key = statement.name.text.toLowerCase();
        const variable = variables.get(key);
        if (!variable)
          throw invalid(
            `Undeclared variable: ${statement.name.text} at ${at(request.query, statement.name.pos)}`,
          );
        variables.set(key, await evaluate(statement.value, variable.type));
      } else {
        const translator = new Translator(env(statement.nodes));
        const sql = translator.query(statement.nodes);
        const names = outputNames(statement.nodes);
        if (dryRun) {
          lastSchema = rename(await describe(connection, sql), names);
          continue;
        }
        const result = await runSql(connection, sql);
        result.schema = rename(result.schema, names);
        if (!firstSelect || key === undefined) key = result;
      }
    }
    const statementType = statements.length > 1 ? 'SCRIPT' : 'SELECT';
    const referencedTables = [...referenced.values()].map((e) => ({ ...e.ref }));
    const statistics: SqlStatistics = {
      statementType,
      referencedTables,
      totalBytesProcessed: bytes,
    };
    if (dryRun)
      return statementType === 'SELECT' && lastSchema
        ? { ...statistics, schema: lastSchema }
        : statistics;
    return { ...statistics, schema: key?.schema ?? [], rows: key?.rows ?? [] };
  }

  private resolve(parts: string[], pos: number, request: SqlRequest): TableEntry {
    if (parts.length > 3)
      throw invalid(`Invalid table name: ${parts.join('.')} at ${at(request.query, pos)}`);
    const ref = this.reference(parts, request);
    const entry = ref && this.tables.get(tableKey(ref));
    if (!ref || !entry) {
      const name = ref ? `${ref.projectId}:${ref.datasetId}.${ref.tableId}` : parts.join('.');
      throw new BigQuerySqlError(
        404,
        'notFound',
        `Not found: Table ${name} was not found in location ${request.location}`,
      );
    }
    return entry;
  }
}

function appendRows(entry: TableEntry, rows: unknown[][] | Record<string, unknown>[]): void {
  const tuples: string[] = [];
  const bytes = entry.schema.map(() => 0);
  for (const [index, row] of rows.entries()) {
    let values: unknown[];
    if (Array.isArray(row)) {
      if (row.length !== entry.schema.length) {
        throw new Error(`row ${index} has ${row.length} values for ${entry.schema.length} columns`);
      }
      values = row;
    } else {
      const known = new Set(entry.schema.map((f) => f.name));
      const unknown = Object.keys(row).find((k) => !known.has(k));
      if (unknown !== undefined) throw new Error(`row ${index}: no such field: ${unknown}`);
      values = entry.schema.map((f) => row[f.name]);
    }
    const literals = entry.schema.map((field, c) => {
      try {
        const literal = storedLiteral(field, values[c]);
        bytes[c] = (bytes[c] ?? 0) + literal.bytes;
        return literal.sql;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(`row ${index}: ${message}`, { cause: error });
      }
    });
    tuples.push(`(${literals.join(', ')})`);
  }
  // Only once every row is valid, like BigQuery's all-or-nothing insert.
  entry.tuples.push(...tuples);
  entry.columnBytes = entry.columnBytes.map((b, c) => b + (bytes[c] ?? 0));
}

function splitParameters(parameters: unknown): {
  named: Map<string, unknown>;
  positional: unknown[];
} {
  const named = new Map<string, unknown>();
  const positional: unknown[] = [];
  if (!Array.isArray(parameters)) return { named, positional };
  for (const parameter of parameters) {
    const name = record(parameter).name;
    if (typeof name === 'string' && name !== '') named.set(name.toLowerCase(), parameter);
    else positional.push(parameter);
  }
  return { named, positional };
}

function rename(schema: BigQueryField[], names: string[] | undefined): BigQueryField[] {
  const renamed =
    names && names.length === schema.length
      ? schema.map((f, c) => ({ ...f, name: names[c] ?? f.name }))
      : schema;
  const seen = new Set<string>();
  const duplicates = new Set<string>();
  for (const field of renamed) {
    const key = field.name.toLowerCase();
    if (seen.has(key)) duplicates.add(field.name);
    seen.add(key);
  }
  if (duplicates.size > 0) {
    throw invalid(
      `Duplicate column names in the result are not supported. Found duplicate(s): ${[...duplicates].join(', ')}`,
    );
  }
  return renamed;
}

async function runSql(
  connection: DuckDBConnection,
  sql: string,
): Promise<{ schema: BigQueryField[]; rows: unknown[][] }> {
  try {
    const reader = await connection.runAndReadAll(sql);
    const types = reader.columnTypes();
    const schema = reader.columnNames().map((name, c) => {
      const type = types[c];
      if (!type) throw new Error(`column ${name} has no type`);
      return fieldFor(name, type);
    });
    const rows = reader
      .getRows()
      .map((row) =>
        row.map((value, c) => cellValue(value, schema[c] ?? { name: '', type: 'STRING' })),
      );
    return { schema, rows };
  } catch (error) {
    throw duckError(error);
  }
}

async function describe(connection: DuckDBConnection, sql: string): Promise<BigQueryField[]> {
  try {
    const prepared = await connection.prepare(sql);
    try {
      const fields: BigQueryField[] = [];
      for (let c = 0; c < prepared.columnCount; c++)
        fields.push(fieldFor(prepared.columnName(c), prepared.columnType(c)));
      return fields;
    } finally {
      prepared.destroySync();
    }
  } catch (error) {
    throw duckError(error);
  }
}

/** A DuckDB failure in BigQuery's words where they are known, else DuckDB's first line. */
function duckError(error: unknown): BigQuerySqlError {
  if (error instanceof BigQuerySqlError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const first = message.split('\n')[0] ?? message;
  const column = /Referenced column "([^"]+)" not found/.exec(first);
  if (column) return invalid(`Unrecognized name: ${column[1]}`);
  const member = /"([^"]+)" does not have a column named "([^"]+)"/.exec(first);
  if (member) return invalid(`Name ${member[2]} not found inside ${member[1]}`);
  const table = /Table with name ([^ ]+) does not exist/.exec(first);
  if (table)
    return invalid(`Table "${table[1]}" must be qualified with a dataset (e.g. dataset.table).`);
  const own = /^Invalid Input Error: (.*)$/.exec(first);
  if (own?.[1]) return new BigQuerySqlError(400, 'invalidQuery', own[1], { cause: error });
  return new BigQuerySqlError(
    400,
    'invalidQuery',
    `${first} (DuckDB, running the translated query)`,
    { cause: error },
  );
}

/** A JSON value's fields when it is an object, else none (request bodies are untrusted). */
export function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}
