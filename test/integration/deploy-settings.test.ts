import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FUNCTION_SETTINGS } from '../../functions/settings.js';
import {
  DEMO_SETTINGS,
  envFile,
  flag,
  having,
  planned,
  ROOT,
  type Run,
  sandbox,
} from '../helpers/stub-cli/deploy-sandbox.js';

// Every variable a function reads (its zod schema: functions/<function>/config.ts, built on
// shared/config.ts) is either passed on by deploy.sh or named as one it handles itself
// (`./deploy.sh settings`), and the env files it writes hold each function to that: adding a
// setting to a schema without deciding fails here.

type Kind = 'pass' | 'set' | 'secret' | 'local';
const FUNCTIONS = {
  profile: { name: 'profile-api', env: 'profile.env.yaml' },
  snapshotCatalog: { name: 'profile-api-snapshot-catalog', env: 'catalog.env.yaml' },
  snapshotMapping: { name: 'profile-api-snapshot-mapping', env: 'mapping.env.yaml' },
  syncMapping: { name: 'profile-api-sync-mapping', env: 'sync.env.yaml' },
  syncMappingShard: { name: 'profile-api-sync-mapping-shard', env: 'sync-shard.env.yaml' },
} as const;
type Fn = keyof typeof FUNCTIONS;
const FN_NAMES = Object.keys(FUNCTIONS) as Fn[];
/** What every function runs with besides its schema's variables (for functions-framework). */
const RUNTIME_VARS = new Set(['NODE_ENV', 'IGNORED_ROUTES']);

const read = (fn: Fn) => FUNCTION_SETTINGS[fn] ?? [];

/** `./deploy.sh settings`: per function, each variable's kind. */
async function declared(): Promise<Map<Fn, Map<string, Kind[]>>> {
  const box = await sandbox({});
  const { stdout } = box.run(['settings']);
  const out = new Map<Fn, Map<string, Kind[]>>(FN_NAMES.map((fn) => [fn, new Map()]));
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [fn, kind, name] = line.trim().split(/\s+/);
    const vars = out.get(fn as Fn);
    if (!vars || !name) throw new Error(`deploy.sh settings printed an odd line: ${line}`);
    vars.set(name, [...(vars.get(name) ?? []), kind as Kind]);
  }
  return out;
}

const ofKind = (vars: Map<string, Kind[]>, kind: Kind) =>
  [...vars].filter(([, kinds]) => kinds.includes(kind)).map(([name]) => name);

/** A value deploy.sh cannot have made up; one holds a newline and quotes (the env file's YAML). */
const sentinel = (name: string) =>
  name === 'ID_TYPES_JSON' ? `[\n  {"name": "sentinel"}\n]` : `sentinel-${name.toLowerCase()}`;

/** A dry run with every `pass` variable of the deployed functions set, and the secret ones too. */
async function plan(
  decl: Map<Fn, Map<string, Kind[]>>,
  mode: 'snapshot' | 'bigtable',
): Promise<{ run: Run; work: string; deployed: Fn[]; env: Record<string, string> }> {
  const deployed: Fn[] =
    mode === 'bigtable'
      ? ['profile', 'snapshotCatalog', 'syncMapping', 'syncMappingShard']
      : ['profile', 'snapshotCatalog', 'snapshotMapping'];
  const env: Record<string, string> = {
    ...DEMO_SETTINGS,
    AEROSPIKE_HOSTS: '10.0.0.5:3000',
    AEROSPIKE_USER: 'profile_api',
    BIGQUERY_LOCATION: 'EU',
    MAPPING_STORE: mode,
    DRY_RUN: '1',
  };
  // Written only when set (deploy.sh checks it is the one method built).
  if (mode === 'bigtable') env.MAPPING_SYNC_METHOD = 'mutations';
  for (const fn of deployed) {
    const vars = decl.get(fn) ?? new Map();
    for (const name of ofKind(vars, 'pass')) env[name] = sentinel(name);
    for (const name of [...ofKind(vars, 'secret'), ...ofKind(vars, 'local')]) {
      env[name] ??= `do-not-deploy-${name.toLowerCase()}-0123456789`;
      // MONGO_URI_SECRET has a default (and MONGO_URI creates the secret).
      if (ofKind(vars, 'secret').includes(name) && name !== 'MONGO_URI') {
        env[`${name}_SECRET`] ??= `${name.toLowerCase()}-secret`;
      }
    }
  }
  const box = await sandbox({});
  return { run: box.run([], env), work: box.work, deployed, env };
}

describe('deploy.sh and the settings the functions read', () => {
  const decl = declared();
  const runs = decl.then(async (d) => [await plan(d, 'snapshot'), await plan(d, 'bigtable')]);

  it('names every variable of every function, once, and nothing the functions do not read', async () => {
    const vars = await decl;
    for (const fn of FN_NAMES) {
      const mine = vars.get(fn) ?? new Map<string, Kind[]>();
      const schema = read(fn);
      expect(schema.length, fn).toBeGreaterThan(5);
      expect(
        schema.filter((name) => !mine.has(name)),
        `${fn}: variables its schema reads that deploy.sh neither passes on nor handles`,
      ).toEqual([]);
      expect(
        [...mine.keys()].filter((name) => !schema.includes(name)),
        `${fn}: variables deploy.sh names that its schema does not read`,
      ).toEqual([]);
      expect(
        [...mine].filter(([, kinds]) => kinds.length > 1).map(([name]) => name),
        `${fn}: variables named twice`,
      ).toEqual([]);
    }
  });

  it('passes every "pass" variable on, as it was given, to each function in both mapping modes', async () => {
    const vars = await decl;
    for (const { work, deployed, env } of await runs) {
      for (const fn of deployed) {
        const file = envFile(join(work, FUNCTIONS[fn].env));
        for (const name of ofKind(vars.get(fn) ?? new Map(), 'pass')) {
          expect(file.get(name), `${fn} ${name}`).toBe(env[name]);
        }
      }
    }
    // The four of issue 19 among them.
    for (const name of ['LOG_REQUESTS', 'LOG_SLOW_MS', 'BATCH_MAX_IDS', 'BATCH_MAX_PROFILES']) {
      expect(ofKind(vars.get('profile') ?? new Map(), 'pass')).toContain(name);
    }
  });

  it('writes every "set" variable itself, and nothing else but the runtime two', async () => {
    const vars = await decl;
    const written = new Map<Fn, Set<string>>();
    for (const { work, deployed, env } of await runs) {
      for (const fn of deployed) {
        const mine = vars.get(fn) ?? new Map<string, Kind[]>();
        const file = envFile(join(work, FUNCTIONS[fn].env));
        for (const [name, value] of file) {
          const kinds = mine.get(name) ?? [];
          // The runtime's own, unless a function's schema reads it (NODE_ENV: the profile's).
          if (RUNTIME_VARS.has(name) && !kinds.includes('set')) continue;
          expect(kinds.includes('pass') || kinds.includes('set'), `${fn} ${name}`).toBe(true);
          if (kinds.includes('set')) expect(value, `${fn} ${name}`).not.toBe(sentinel(name));
          written.set(fn, new Set([...(written.get(fn) ?? []), name]));
          // What is not deployed never is, even when this environment has it.
          expect(env[name] === undefined || !kinds.includes('local'), `${fn} ${name}`).toBe(true);
        }
      }
    }
    for (const fn of FN_NAMES) {
      const set = ofKind(vars.get(fn) ?? new Map(), 'set');
      expect(
        set.filter((name) => !written.get(fn)?.has(name)),
        `${fn}: "set" but never written`,
      ).toEqual([]);
    }
  });

  it('mounts every "secret" variable from Secret Manager and never writes it or a "local" one', async () => {
    const vars = await decl;
    for (const { run, work, deployed, env } of await runs) {
      const lines = planned(run.stdout);
      for (const fn of deployed) {
        const mine = vars.get(fn) ?? new Map<string, Kind[]>();
        const file = envFile(join(work, FUNCTIONS[fn].env));
        const [deploy] = having(lines, `gcloud functions deploy ${FUNCTIONS[fn].name} `);
        const mounted = (flag(deploy ?? '', '--set-secrets') ?? '').split(',');
        for (const name of ofKind(mine, 'secret')) {
          expect(file.has(name), `${fn} ${name}`).toBe(false);
          const secret = fn === 'snapshotCatalog' ? 'profile-api-mongo-uri' : env[`${name}_SECRET`];
          expect(mounted, `${fn} ${name}`).toContain(`${name}=${secret}:latest`);
        }
        for (const name of ofKind(mine, 'local'))
          expect(file.has(name), `${fn} ${name}`).toBe(false);
      }
      // No secret value anywhere in what the run printed or ran.
      for (const [name, value] of Object.entries(env)) {
        if (name.endsWith('_SECRET') || !value.startsWith('do-not-deploy-')) continue;
        expect(run.stdout).not.toContain(value);
      }
      expect(run.stdout).not.toContain('s3cret');
    }
  });

  it("prints each function's env file in a dry run, secrets by their source only", async () => {
    const [snapshot] = await runs;
    const out = snapshot?.run.stdout ?? '';
    expect(out).toContain('# env of profile-api in europe-west1, as deployed');
    expect(out).toContain('#   LOG_REQUESTS: "sentinel-log_requests"\n');
    expect(out).toContain('#   ID_TYPES_JSON: "[\\n  {\\"name\\": \\"sentinel\\"}\\n]"\n');
    expect(out).toContain(
      '#   API_KEYS: <from Secret Manager api_keys-secret:latest, not shown>\n',
    );
    expect(out).toContain('# env of profile-api-snapshot-catalog, as deployed');
    expect(out).toContain(
      '#   MONGO_URI: <from Secret Manager profile-api-mongo-uri:latest, not shown>\n',
    );
    expect(out).toContain('# env of profile-api-snapshot-mapping, as deployed');
  });
});

describe("the README's configuration tables", () => {
  /** The variables named in the first column of the tables under "## Configuration". */
  function documented(): Set<string> {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('\n## Configuration\n');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 5));
    const names = new Set<string>();
    for (const row of section.split('\n').filter((l) => l.startsWith('| `'))) {
      const first = row.split('|')[1] ?? '';
      for (const [, name] of first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) if (name) names.add(name);
    }
    return names;
  }

  it('document every variable a function reads, and only those', () => {
    const names = documented();
    const all = new Set(FN_NAMES.flatMap(read));
    expect([...all].filter((name) => !names.has(name))).toEqual([]);
    expect([...names].filter((name) => !all.has(name))).toEqual([]);
  });
});
