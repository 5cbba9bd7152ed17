// Cold start: from spawning functions-framework to the first 200, for the profile function
// with a large mapping snapshot, and for the ceiling function (same framework, nothing to load).
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../helpers/free-port.js';

const ROOT = new URL('../..', import.meta.url).pathname;

/** Milliseconds from spawn to the first 200 at `path`. */
export async function coldStart(
  target: string,
  env: Record<string, string>,
  path: string,
  source?: string,
): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child: ChildProcess = spawn(
    `${ROOT}node_modules/.bin/functions-framework`,
    source ? [`--source=${source}`] : [],
    {
      cwd: ROOT,
      stdio: 'ignore',
      env: { ...process.env, ...env, FUNCTION_TARGET: target, PORT: String(port) },
    },
  );
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${target} exited with ${child.exitCode}`);
      const status = await fetch(`http://127.0.0.1:${port}${path}`).then(
        async (res) => {
          await res.arrayBuffer();
          return res.status;
        },
        () => 0,
      );
      if (status === 200) return performance.now() - started;
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}
