/*
 * Google's own Bigtable emulator (cbtemulator), started on a free port for a test and stopped
 * after it. Never a hand-written Bigtable: filters, GC rules and timestamps behave as Google's
 * implementation does. Where it comes from (see the team kit's shared/reference/bigtable-local.md):
 *  1. BIGTABLE_EMULATOR_BIN, if set;
 *  2. google-cloud-cli's package (google-cloud-cli-bigtable-emulator);
 *  3. .cache/bigtable-emulator/cbtemulator, built from test/emulators/bigtable/main.go with
 *     Debian's golang-go and golang-google-cloud-dev (built here on first use if `go` exists;
 *     .ci/run installs them on machines without google-cloud-cli).
 * The emulator keeps data in memory only: every start is an empty instance.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';

const ROOT = new URL('../..', import.meta.url).pathname;
const GCLOUD_EMULATOR = '/usr/lib/google-cloud-sdk/platform/bigtable-emulator/cbtemulator';
const BUILT = join(ROOT, '.cache/bigtable-emulator/cbtemulator');
const SOURCE = join(ROOT, 'test/emulators/bigtable');

let binary: Promise<string> | undefined;

/** The emulator binary, found or built once per process. */
export function bigtableEmulatorBinary(): Promise<string> {
  binary ??= locate();
  return binary;
}

async function locate(): Promise<string> {
  const explicit = process.env.BIGTABLE_EMULATOR_BIN;
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`BIGTABLE_EMULATOR_BIN=${explicit} does not exist`);
    return explicit;
  }
  if (existsSync(GCLOUD_EMULATOR)) return GCLOUD_EMULATOR;
  if (existsSync(BUILT)) return BUILT;
  await mkdir(dirname(BUILT), { recursive: true });
  // Test files run in parallel: each builds to its own name, then one atomic rename wins.
  const partial = `${BUILT}.${process.pid}.partial`;
  try {
    // GOPATH mode takes a package path relative to the working directory, not an absolute one.
    await promisify(execFile)('go', ['build', '-o', partial, `./${relative(ROOT, SOURCE)}`], {
      cwd: ROOT,
      env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode' },
    });
    await rename(partial, BUILT);
  } catch (err) {
    throw new Error(
      'no Bigtable emulator: install google-cloud-cli-bigtable-emulator, or Debian packages ' +
        `golang-go and golang-google-cloud-dev to build ${SOURCE} (.ci/run does this)`,
      { cause: err },
    );
  }
  return BUILT;
}

/** A running emulator; `host` is what BIGTABLE_EMULATOR_HOST takes. */
export class BigtableEmulator {
  private constructor(
    private child: ChildProcess,
    readonly host: string,
    private readonly bin: string,
  ) {}

  /** Starts an emulator on a free port. */
  static async start(): Promise<BigtableEmulator> {
    const bin = await bigtableEmulatorBinary();
    const { child, host } = await launch(bin, 0);
    return new BigtableEmulator(child, host, bin);
  }

  get port(): number {
    return Number(this.host.slice(this.host.lastIndexOf(':') + 1));
  }

  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  /** Thaws a paused process (SIGCONT), data intact. */
  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** Kills the process: connections are refused until restart(). Its data is gone. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
    await exited;
  }

  /** Starts an empty emulator again on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    this.child = (await launch(this.bin, this.port)).child;
  }

  close(): Promise<void> {
    return this.stop();
  }
}

async function launch(bin: string, port: number): Promise<{ child: ChildProcess; host: string }> {
  const child = spawn(bin, ['-host', '127.0.0.1', '-port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const host = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`Bigtable emulator did not start: ${out}`)),
      15_000,
    );
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const match = /running on (\S+:\d+)/.exec(out);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Bigtable emulator exited with ${code}: ${out}`));
    });
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return { child, host };
}
