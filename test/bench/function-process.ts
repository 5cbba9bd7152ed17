import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort } from '../helpers/free-port.js';

const ROOT = new URL('../..', import.meta.url).pathname;

/** A functions-framework server in its own process. */
export interface FunctionProcess {
  readonly url: string;
  readonly startedAt: number;
  /** CPU time the process has used so far (user + system), in milliseconds (Linux /proc). */
  cpuMs(): number;
  /** Its resident memory now (Linux /proc). */
  rssBytes(): number;
  stop(): Promise<void>;
}

/**
 * Starts `functions-framework` (the built code, or `source`) for `target` on a free port and
 * resolves once it accepts connections. Its output is discarded: per-request logs would
 * otherwise be measured as pipe back-pressure of this process.
 */
export async function startFunction(
  target: string,
  env: Record<string, string>,
  source?: string,
  /** Where its output goes (a file descriptor open for writing); discarded when absent. */
  logFd?: number,
): Promise<FunctionProcess> {
  const port = await freePort();
  const startedAt = performance.now();
  const args = source ? [`--source=${source}`] : [];
  const child: ChildProcess = spawn(`${ROOT}node_modules/.bin/functions-framework`, args, {
    cwd: ROOT,
    stdio: logFd === undefined ? 'ignore' : ['ignore', logFd, logFd],
    env: { ...process.env, ...env, FUNCTION_TARGET: target, PORT: String(port) },
  });
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${target} exited with ${child.exitCode}`);
    const up = await fetch(`${url}/__ping`).then(
      () => true,
      () => false,
    );
    if (up) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    url,
    startedAt,
    rssBytes: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    cpuMs: () => {
      // Fields 14 and 15 of /proc/<pid>/stat: user and system time in clock ticks (100 Hz).
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10;
    },
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
