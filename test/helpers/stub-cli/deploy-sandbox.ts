import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { makeTempDir } from '../temp-dir.js';

// deploy.sh against the stub gcloud/bq in this directory, which record every call and remember
// what exists; and the checks of its command lines against the real gcloud where installed.
export const ROOT = new URL('../../..', import.meta.url).pathname;
export const STUBS = new URL('.', import.meta.url).pathname.replace(/\/$/, '');

/** One run of deploy.sh. */
export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The stub gcloud/bq calls, one shell-quoted line each. */
  readonly commands: string[];
}

/** A project of its own: the stubs' state and deploy.sh's work directory. */
export interface Sandbox {
  readonly work: string;
  readonly state: string;
  /** Runs deploy.sh with the sandbox's settings and `env`; throws when it fails. */
  run(args?: string[], env?: Record<string, string>): Run;
  /**
   * Runs deploy.sh with `settings` (the sandbox's unless given) and `env`, whatever its exit
   * code; an undefined value removes that variable.
   */
  attempt(
    args: string[],
    env?: Record<string, string | undefined>,
    settings?: Record<string, string>,
  ): Run;
  /** As attempt, without blocking the event loop (for servers in this process). */
  attemptAsync(args: string[], env?: Record<string, string | undefined>): Promise<Run>;
}

/** A new sandbox whose runs use `defaults` as their settings. */
export async function sandbox(defaults: Record<string, string>): Promise<Sandbox> {
  const dir = await makeTempDir();
  const state = join(dir, 'state');
  mkdirSync(state);
  const log = join(dir, 'calls.log');
  const environment = (
    env: Record<string, string | undefined>,
    settings: Record<string, string>,
  ): NodeJS.ProcessEnv => ({
    ...process.env,
    PATH: `${STUBS}${delimiter}${process.env.PATH}`,
    STUB_LOG: log,
    STUB_STATE: state,
    DEPLOY_WORK_DIR: join(dir, 'work'),
    ...settings,
    ...env,
  });
  const commands = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const attempt: Sandbox['attempt'] = (args, env = {}, settings = defaults) => {
    writeFileSync(log, '');
    const result = spawnSync('bash', [join(ROOT, 'deploy.sh'), ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: environment(env, settings),
    });
    return {
      code: result.status,
      stdout: result.stdout,
      stderr: result.stderr,
      commands: commands(),
    };
  };
  return {
    work: join(dir, 'work'),
    state,
    attempt,
    attemptAsync(args, env = {}) {
      writeFileSync(log, '');
      return new Promise((resolve) => {
        const child = spawn('bash', [join(ROOT, 'deploy.sh'), ...args], {
          cwd: ROOT,
          env: environment(env, defaults),
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
        });
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        child.on('close', (code) => resolve({ code, stdout, stderr, commands: commands() }));
      });
    },
    run(args = [], env = {}) {
      const result = attempt(args, env);
      if (result.code !== 0) {
        // tsc reports on stdout: show its end too.
        const tail = result.stdout.split('\n').slice(-15).join('\n');
        throw new Error(`deploy.sh failed:\n${result.stderr}\n${tail}`);
      }
      return result;
    },
  };
}

/** The settings every deploy test starts from (each adds its own Aerospike seeds and more). */
export const DEMO_SETTINGS = Object.freeze({
  PROJECT_ID: 'demo-proj',
  VPC_CONNECTOR: 'aerospike-connector',
  MONGO_DATABASE: 'adtech',
  MAPPING_TABLE: 'demo-proj.identity.user_mapping',
  MONGO_URI: 'mongodb://profile:s3cret@10.0.0.9:27017/adtech',
  // Monitoring has its own tests (deploy-monitoring.test.ts), which turn it on.
  MONITORING: 'off',
});

/**
 * Marks resources as existing in the stub's state (file names as the stub gcloud describes them);
 * a non-empty value is what its describe --format=json prints.
 */
export function exist(box: Pick<Sandbox, 'state'>, files: Record<string, string>): void {
  for (const [name, json] of Object.entries(files)) {
    writeFileSync(join(box.state, name), '');
    if (json) writeFileSync(join(box.state, `${name}.json`), json);
  }
}

/**
 * Runs `deploy.sh verify` on a stand-in for the compiled code (see fakeDist), with no BigQuery
 * test server or token from the shell running the tests unless `env` gives them; `seen` is the
 * environment the stand-in ran with.
 */
export async function attemptVerify(
  box: Sandbox,
  env: Record<string, string | undefined> = {},
  settings?: Record<string, string>,
): Promise<Run & { seen: () => Record<string, string> }> {
  const dist = await fakeDist();
  const result = box.attempt(
    ['verify'],
    {
      BIGQUERY_EMULATOR_HOST: undefined,
      GOOGLE_OAUTH_ACCESS_TOKEN: undefined,
      DEPLOY_DIST_DIR: dist.dir,
      ...env,
    },
    settings,
  );
  return { ...result, seen: dist.seen };
}

/** The commands a dry run printed (after `+ `). */
export const planned = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('+ '))
    .map((l) => l.slice(2));

/** The lines holding every one of `parts`. */
export const having = (commands: string[], ...parts: string[]) =>
  commands.filter((c) => parts.every((p) => c.includes(p)));

/** The words of a shell-quoted command line, as the command receives them. */
export function argv(line: string): string[] {
  const words = spawnSync('bash', ['-c', 'eval "set -- $1"; printf "%s\\0" "$@"', '_', line], {
    encoding: 'utf8',
  }).stdout.split('\0');
  return words.slice(0, -1);
}

/** The value of `--name=value` in a shell-quoted command line. */
export function flag(line: string, name: string): string | undefined {
  const word = argv(line).find((w) => w.startsWith(`${name}=`));
  return word?.slice(name.length + 1);
}

/** Parses the --env-vars-file YAML deploy.sh writes (KEY: "JSON string" lines). */
export function envFile(path: string): Map<string, string> {
  return new Map(
    readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const colon = line.indexOf(': ');
        return [line.slice(0, colon), JSON.parse(line.slice(colon + 2)) as string];
      }),
  );
}

/** The commands deploy.sh printed for the operator to run (resume, run now, delete). */
export const printedCommands = (...outputs: string[]) =>
  outputs.flatMap((out) =>
    out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('gcloud ')),
  );

/** The real gcloud on PATH (not the stub), if this machine has one. */
export function realGcloud(): { gcloud: string; path: string } | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== STUBS);
  const gcloud = dirs.map((d) => join(d, 'gcloud')).find((p) => existsSync(p));
  return gcloud ? { gcloud, path: dirs.join(delimiter) } : undefined;
}

/**
 * One line per command shape, gcloud commands only, describes left out: lines that differ only
 * in their sandbox's files (or in what `same` erases) parse alike.
 */
export function gcloudShapes(
  lines: string[],
  same: (line: string) => string = (line) => line,
): string[] {
  const shapes = new Map<string, string>();
  for (const line of lines) {
    const shape = same(line.replace(/\/profile-api-\w+\/work\//g, '/WORK/'));
    if (!shapes.has(shape)) shapes.set(shape, line);
  }
  return [...shapes.values()].filter((c) => c.startsWith('gcloud ') && !c.includes(' describe '));
}

// Parses many command lines in ONE gcloud process (its CLI loaded once, each line executed in
// turn without credentials): a gcloud start costs most of a second of CPU, a line after that a
// fraction of it. Prints one JSON result per line: exit code and what went to stderr.
const PARSE_LINES = `
import json, os, shlex, sys, tempfile
root = sys.argv[1]
sys.path[0:0] = [root + '/lib', root + '/lib/third_party']
from googlecloudsdk import gcloud_main
cli = gcloud_main.CreateCLI([])
results = []
for line in json.load(sys.stdin):
    saved = os.dup(2)
    with tempfile.TemporaryFile() as err:
        os.dup2(err.fileno(), 2)
        code = 0
        try:
            cli.Execute(shlex.split(line)[1:])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException as e:
            code = 99
            os.write(2, repr(e).encode())
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        results.append({'code': code, 'stderr': err.read().decode('utf8', 'replace')})
print(json.dumps(results))
`;

/** The SDK directory of the `gcloud` binary and the Python that runs it. */
function gcloudSdk(gcloud: string): { sdk: string; python: string } {
  const sdk = join(
    spawnSync('readlink', ['-f', gcloud], { encoding: 'utf8' }).stdout.trim(),
    '../..',
  );
  const bundled = join(sdk, 'platform/bundledpythonunix/bin/python3');
  return { sdk, python: existsSync(bundled) ? bundled : 'python3' };
}

/** Lines a shell would read differently from shlex (expansions, ANSI-C quotes, operators). */
const NEEDS_A_SHELL = /\$|[|;&<>`]|^\w+=/;

/**
 * Runs each line with the real gcloud and no credentials: "no active account" means its flags
 * parsed. Returns the lines that failed otherwise, with gcloud's message. Plain lines are parsed
 * in two gcloud processes (half each); a line that needs a shell runs through bash on its own.
 */
export async function unparsedByGcloud(lines: string[], path: string): Promise<string[]> {
  const config = await makeTempDir();
  const env = { PATH: path, CLOUDSDK_CONFIG: config, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' };
  const verdict = (line: string, code: number | null, stderr: string) =>
    code === 1 && stderr.includes('You do not currently have an active account selected')
      ? undefined
      : `${line}\n  -> exit ${code}: ${stderr.split('\n').slice(0, 3).join(' | ')}`;
  const inShell = (line: string) =>
    new Promise<string | undefined>((resolve) => {
      const child = execFile('bash', ['-c', line], { encoding: 'utf8', env }, (error, _o, stderr) =>
        resolve(verdict(line, error ? (error.code as number) : 0, stderr)),
      );
      child.stdin?.end();
    });
  const oneByOne = async (batch: string[]) => {
    const out: (string | undefined)[] = [];
    for (const line of batch) out.push(await inShell(line));
    return out;
  };
  const gcloud = path
    .split(delimiter)
    .map((d) => join(d, 'gcloud'))
    .find((p) => existsSync(p));
  const sdk = gcloud ? gcloudSdk(gcloud) : undefined;
  const inBatch = (batch: string[]) => {
    // No gcloud found on `path`: one gcloud per line, as a shell runs it (and reports).
    if (batch.length === 0 || !sdk) return oneByOne(batch);
    return new Promise<(string | undefined)[]>((resolve, reject) => {
      const child = execFile(
        sdk.python,
        ['-c', PARSE_LINES, sdk.sdk],
        { encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error) {
            reject(new Error(`gcloud batch parse failed: ${stderr.slice(0, 2000)}`));
            return;
          }
          const results = JSON.parse(stdout) as { code: number; stderr: string }[];
          resolve(
            batch.map((line, i) =>
              verdict(line, results[i]?.code ?? null, results[i]?.stderr ?? ''),
            ),
          );
        },
      );
      child.stdin?.end(JSON.stringify(batch));
    });
  };
  const plain = lines.filter((l) => !NEEDS_A_SHELL.test(l));
  const shell = lines.filter((l) => NEEDS_A_SHELL.test(l));
  const half = Math.ceil(plain.length / 2);
  const verdicts = await Promise.all([
    inBatch(plain.slice(0, half)),
    inBatch(plain.slice(half)),
    oneByOne(shell),
  ]);
  return verdicts.flat().filter((v): v is string => v !== undefined);
}

// gcloud checks an imported file against its schema only after it has credentials; this runs
// the same check (the SDK's own code and schemas) with the SDK's Python.
const VALIDATE_IMPORT = `
import sys
root = sys.argv[1]
sys.path[0:0] = [root + '/lib', root + '/lib/third_party']
from googlecloudsdk.command_lib.export import util as export_util
from googlecloudsdk.core import yaml_validator
from googlecloudsdk.generated_clients.apis.compute.v1 import compute_v1_messages as messages
kind, path = sys.argv[2], sys.argv[3]
try:
    export_util.Import(message_type=getattr(messages, kind), stream=open(path).read(),
                       schema_path=export_util.GetSchemaPath('compute', 'v1', kind, for_help=False))
except yaml_validator.ValidationError as e:
    print(e)
    sys.exit(1)
`;

/**
 * Checks a file for `gcloud compute ... import` (kind: UrlMap, ...) against gcloud's schema:
 * undefined when valid, else the reason.
 */
export function importSchemaError(gcloud: string, kind: string, file: string): string | undefined {
  const { sdk, python } = gcloudSdk(gcloud);
  const result = spawnSync(python, ['-c', VALIDATE_IMPORT, sdk, kind, file], {
    encoding: 'utf8',
  });
  return result.status === 0 ? undefined : `${result.stdout}${result.stderr}`.slice(0, 2000);
}

/** A stand-in for the compiled dry-run script: records its environment, fails when asked. */
export async function fakeDist(): Promise<{ dir: string; seen: () => Record<string, string> }> {
  const dir = await makeTempDir();
  const out = join(dir, 'seen.json');
  mkdirSync(join(dir, 'functions/snapshot-mapping'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"type": "module"}\n');
  writeFileSync(
    join(dir, 'functions/snapshot-mapping/dry-run.js'),
    `import { writeFileSync } from 'node:fs';
writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env));
if (process.env.FAKE_DRY_RUN_ERROR) {
  console.error(process.env.FAKE_DRY_RUN_ERROR);
  process.exit(1);
}
console.log('mapping query OK: 1234567 bytes would be processed');
`,
  );
  return { dir, seen: () => JSON.parse(readFileSync(out, 'utf8')) as Record<string, string> };
}
