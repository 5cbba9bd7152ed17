// A small evaluator for the part of Cloud Logging's query language that deploy.sh's log-based
// metrics use, to check each filter against real log lines:
//   comparison  FIELD=VALUE | FIELD=(VALUE OR VALUE ...) | FIELD>=N | FIELD>N | FIELD<=N | FIELD<N
//   conjunction COMPARISON AND COMPARISON ... (AND may be left out between comparisons)
//   FIELD       dotted path, a segment may be quoted: jsonPayload."@type"
//   VALUE       "quoted string" | number | true | false | a severity name (DEBUG ... EMERGENCY)
//   extractor   EXTRACT(FIELD)
// Anything else (OR between comparisons, NOT, :, =~, functions) is refused, not guessed at.
// Semantics as Google documents them: a comparison with a field the entry lacks is false;
// severity compares by level; numbers compare as numbers.

type Entry = Record<string, unknown>;

interface Comparison {
  readonly path: readonly string[];
  readonly op: '=' | '>=' | '>' | '<=' | '<';
  readonly values: readonly (string | number | boolean)[];
}

const SEVERITIES = [
  'DEFAULT',
  'DEBUG',
  'INFO',
  'NOTICE',
  'WARNING',
  'ERROR',
  'CRITICAL',
  'ALERT',
  'EMERGENCY',
];

const TOKEN =
  /\s*(?:("(?:[^"\\]|\\.)*")|(>=|<=|!=|=~|!~|[=<>:()])|([A-Za-z_@][\w@./-]*)|(-?\d+(?:\.\d+)?))/y;

function tokens(text: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  for (;;) {
    const start = TOKEN.lastIndex;
    if (/^\s*$/.test(text.slice(start))) return out;
    const m = TOKEN.exec(text);
    if (!m || m.index !== start) throw new Error(`cannot read the filter at: ${text.slice(start)}`);
    out.push((m[1] ?? m[2] ?? m[3] ?? m[4]) as string);
  }
}

/** Splits a field path into its segments (quoted segments may hold dots and @). */
function pathOf(word: string, next: () => string | undefined, peek: () => string | undefined) {
  const parts = word.split('.').filter((p) => p !== '');
  // `jsonPayload."@type"`: the tokenizer gives `jsonPayload.` then the quoted segment.
  while (word.endsWith('.') && peek()?.startsWith('"')) {
    parts.push(JSON.parse(next() as string) as string);
    word = '';
  }
  return parts;
}

function literal(token: string): string | number | boolean {
  if (token.startsWith('"')) return JSON.parse(token) as string;
  if (/^-?\d/.test(token)) return Number(token);
  if (token === 'true' || token === 'false') return token === 'true';
  if (SEVERITIES.includes(token)) return token;
  throw new Error(`unsupported value ${token}`);
}

/** Parses a filter of the supported subset into its comparisons (all must hold). */
export function parseLogFilter(filter: string): Comparison[] {
  const t = tokens(filter);
  let i = 0;
  const next = () => t[i++];
  const peek = () => t[i];
  const comparisons: Comparison[] = [];
  while (i < t.length) {
    if (peek() === 'AND') {
      next();
      continue;
    }
    const word = next() as string;
    if (word === 'OR' || word === 'NOT' || word === '(' || word.startsWith('"')) {
      throw new Error(`unsupported here: ${word}`);
    }
    const path = pathOf(word, next, peek);
    const op = next();
    if (op !== '=' && op !== '>=' && op !== '>' && op !== '<=' && op !== '<') {
      throw new Error(`unsupported operator ${op} after ${path.join('.')}`);
    }
    const values: (string | number | boolean)[] = [];
    if (peek() === '(') {
      if (op !== '=') throw new Error('a list of values needs =');
      next();
      for (;;) {
        values.push(literal(next() as string));
        const sep = next();
        if (sep === ')') break;
        if (sep !== 'OR') throw new Error(`expected OR or ) in a list of values, not ${sep}`);
      }
    } else {
      values.push(literal(next() as string));
    }
    comparisons.push({ path, op, values });
  }
  return comparisons;
}

function lookup(entry: Entry, path: readonly string[]): unknown {
  let v: unknown = entry;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Entry)[p];
  }
  return v;
}

function holds(c: Comparison, entry: Entry): boolean {
  const field = lookup(entry, c.path);
  if (field === undefined || field === null) return false;
  const isSeverity = c.path.length === 1 && c.path[0] === 'severity';
  return c.values.some((value) => {
    if (isSeverity) {
      const a = SEVERITIES.indexOf(String(field));
      const b = SEVERITIES.indexOf(String(value));
      return compare(a, b, c.op);
    }
    if (typeof value === 'number') {
      const n = typeof field === 'number' ? field : Number(field);
      return typeof field !== 'boolean' && Number.isFinite(n) && compare(n, value, c.op);
    }
    return c.op === '=' && field === value;
  });
}

function compare(a: number, b: number, op: Comparison['op']): boolean {
  switch (op) {
    case '=':
      return a === b;
    case '>=':
      return a >= b;
    case '>':
      return a > b;
    case '<=':
      return a <= b;
    case '<':
      return a < b;
  }
}

/** Whether `entry` (a LogEntry as Cloud Logging stores it) matches `filter`. */
export function matchesLogFilter(filter: string, entry: Entry): boolean {
  return parseLogFilter(filter).every((c) => holds(c, entry));
}

/** The value of `EXTRACT(FIELD)` for `entry` (a string, as label extractors give it). */
export function extract(extractor: string, entry: Entry): unknown {
  const m = /^EXTRACT\((.+)\)$/.exec(extractor);
  if (!m) throw new Error(`unsupported extractor ${extractor}`);
  const t = tokens(m[1] as string);
  let i = 0;
  const path = pathOf(
    t[i++] as string,
    () => t[i++],
    () => t[i],
  );
  return lookup(entry, path);
}

// Special fields of a structured log line (Google's "Structured logging" page): they become the
// LogEntry's own fields; everything else, `message` included, stays in jsonPayload.
const SPECIAL: Readonly<Record<string, string>> = {
  severity: 'severity',
  httpRequest: 'httpRequest',
  time: 'timestamp',
  timestamp: 'timestamp',
  'logging.googleapis.com/trace': 'trace',
  'logging.googleapis.com/spanId': 'spanId',
  'logging.googleapis.com/trace_sampled': 'traceSampled',
  'logging.googleapis.com/labels': 'labels',
  'logging.googleapis.com/insertId': 'insertId',
  'logging.googleapis.com/sourceLocation': 'sourceLocation',
  'logging.googleapis.com/operation': 'operation',
};

/** The LogEntry Cloud Run's logging makes of one JSON line a function wrote to stdout. */
export function cloudRunEntry(
  line: Entry,
  where: { project: string; service: string; region: string },
): Entry {
  const entry: Entry = {
    logName: `projects/${where.project}/logs/run.googleapis.com%2Fstdout`,
    resource: {
      type: 'cloud_run_revision',
      labels: {
        project_id: where.project,
        service_name: where.service,
        revision_name: `${where.service}-00001-abc`,
        configuration_name: where.service,
        location: where.region,
      },
    },
    severity: 'DEFAULT',
  };
  const payload: Entry = {};
  for (const [k, v] of Object.entries(line)) {
    const special = SPECIAL[k];
    if (special) entry[special] = v;
    else payload[k] = v;
  }
  entry.jsonPayload = payload;
  return entry;
}
