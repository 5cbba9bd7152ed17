// What `npm run start:test-servers` runs (see run-on-test-servers.ts), as a function its test
// calls too: the GCS, BigQuery, MongoDB and Aerospike test servers (and Google's Bigtable
// emulator with MAPPING_STORE=bigtable), seeded with generated data dated today, the functions
// served by functions-framework from the built code on the production adapters, each job run once.
import { type ChildProcess, spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { type DemoDataset, generateDemoDataset } from '../../shared/demo/demo-dataset.js';
import { BigtableEmulator } from '../emulators/bigtable-emulator.js';
import { bigtableEnv, createMappingTable } from '../helpers/bigtable-table.js';
import { startLocalStack } from '../helpers/local-stack.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const SHIFT_CLOCK = pathToFileURL(`${ROOT}test/helpers/shift-clock.mjs`).href;

/** What to start. */
export interface TestServersOptions {
  /** Where the identity mapping lives: snapshots in GCS, or Google's Bigtable emulator. */
  readonly mappingStore: 'snapshot' | 'bigtable';
  /** The functions' ports: `mapping` serves snapshotMapping, or syncMapping with Bigtable. */
  readonly ports: {
    readonly profile: number;
    readonly snapshotCatalog: number;
    readonly mapping: number;
  };
  /** The built entry module to serve (default: package.json's `main`, from `npm run build`). */
  readonly source?: string;
  /**
   * Run on another day (epoch ms; default: the machine's clock): the data is dated from it, the
   * BigQuery test server's CURRENT_DATE is its date, and the functions' processes see it as
   * their clock (test/helpers/shift-clock.mjs). Tests use it; a newcomer never needs it.
   */
  readonly now?: number;
  /** The functions' output: this process's (default), or kept for `output()`. */
  readonly output?: 'inherit' | 'keep';
}

/** The running servers. */
export interface TestServers {
  readonly data: DemoDataset;
  readonly profileUrl: string;
  /** The mapping job's URL (snapshotMapping, or syncMapping with Bigtable) and its name. */
  readonly mappingJob: { readonly target: string; readonly url: string };
  /** Each job's first answer, in the order they ran. */
  readonly jobs: readonly {
    readonly target: string;
    readonly status: number;
    readonly body: string;
  }[];
  /** The functions' output so far, with `output: 'keep'`. */
  output(): string;
  close(): Promise<void>;
}

/** Starts everything, runs each job once and waits until the profile function answers /health. */
export async function startTestServers(options: TestServersOptions): Promise<TestServers> {
  const onBigtable = options.mappingStore === 'bigtable';
  const now = options.now ?? Date.now();
  const shiftMs = options.now === undefined ? 0 : Math.round(options.now - Date.now());
  const targets = [
    ['profile', options.ports.profile],
    ['snapshotCatalog', options.ports.snapshotCatalog],
    [onBigtable ? 'syncMapping' : 'snapshotMapping', options.ports.mapping],
  ] as const;

  const stack = await startLocalStack();
  const children: ChildProcess[] = [];
  let bigtable: BigtableEmulator | undefined;
  let kept = '';
  const close = async () => {
    await Promise.all(children.map(stop));
    await stack.close();
    await bigtable?.close();
    if (bigtable) delete process.env.BIGTABLE_EMULATOR_HOST;
  };
  try {
    const mappingEnv: Record<string, string> = { MAPPING_STORE: 'snapshot' };
    if (onBigtable) {
      bigtable = await BigtableEmulator.start();
      process.env.BIGTABLE_EMULATOR_HOST = bigtable.host;
      const table = await createMappingTable('identity-mapping', 1);
      await table.bigtable.close();
      Object.assign(mappingEnv, {
        BIGTABLE_EMULATOR_HOST: bigtable.host,
        ...bigtableEnv('identity-mapping'),
      });
    }
    const data = generateDemoDataset(
      { seed: 7, persons: 2_000, segments: 300, orphanProfiles: 50, superNodeIds: 80 },
      now,
    );
    // The mapping is one partition dated the data's day: the latest, whatever the day.
    await stack.seed(data, data.today);

    const clock =
      shiftMs === 0
        ? {}
        : {
            NODE_OPTIONS: [process.env.NODE_OPTIONS, `--import=${SHIFT_CLOCK}`]
              .filter(Boolean)
              .join(' '),
            SHIFT_CLOCK_MS: String(shiftMs),
          };
    for (const [target, port] of targets) {
      const child = spawn(`${ROOT}node_modules/.bin/functions-framework`, [], {
        cwd: ROOT,
        stdio: [
          'ignore',
          options.output === 'keep' ? 'pipe' : 'inherit',
          options.output === 'keep' ? 'pipe' : 'inherit',
        ],
        env: {
          ...process.env,
          ...stack.env,
          ...mappingEnv,
          ...clock,
          ...(options.source ? { FUNCTION_SOURCE: options.source } : {}),
          FUNCTION_TARGET: target,
          PORT: String(port),
        },
      });
      const keep = (chunk: Buffer) => {
        kept = (kept + chunk.toString()).slice(-200_000);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      children.push(child);
    }

    const url = (port: number) => `http://127.0.0.1:${port}`;
    const jobs: { target: string; status: number; body: string }[] = [];
    for (const [target, port] of targets.slice(1)) {
      const res = await whenListening(`${url(port)}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      jobs.push({ target, status: res.status, body: await res.text() });
    }
    await whenHealthy(`${url(options.ports.profile)}/health`);
    const [mappingTarget, mappingPort] = targets[2];
    return {
      data,
      profileUrl: url(options.ports.profile),
      mappingJob: { target: mappingTarget, url: `${url(mappingPort)}/` },
      jobs,
      output: () => kept,
      close,
    };
  } catch (err) {
    await close();
    throw new Error(`the test servers did not start${kept ? `; their output:\n${kept}` : ''}`, {
      cause: err,
    });
  }
}

/** The first answer once the server listens (it starts with the others; 20 s at most). */
async function whenListening(url: string, init: RequestInit): Promise<Response> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await fetch(url, init);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Waits until /health answers 200 (30 s at most): the profile function started before the jobs
 * ran, and retries its first load with back-off.
 */
async function whenHealthy(url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    const res = await fetch(url).catch(() => undefined);
    if (res?.status === 200) return;
    last = res ? `${res.status} ${await res.text()}` : 'no answer';
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer 200 within 30 s; last: ${last}`);
}

/** Stops a function's process (SIGTERM, then SIGKILL after 5 s). */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
