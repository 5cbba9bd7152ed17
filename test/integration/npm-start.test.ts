import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { orderedKeys } from '../helpers/ordered-keys.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

// The README's first command, as a newcomer runs it: build, create the demo data, serve.
let child: ChildProcess | undefined;
let dir: string | undefined;

afterAll(async () => {
  if (child?.pid) {
    try {
      process.kill(-child.pid, 'SIGTERM'); // the whole group: npm, sh and functions-framework
    } catch {
      // already gone
    }
  }
  if (dir) await removeTempDir(dir);
});

describe('npm start', () => {
  it('creates the demo data, serves on the port, and prints a curl that works', async () => {
    dir = await makeTempDir();
    const port = await freePort();
    child = spawn('npm', ['start'], {
      cwd: new URL('../..', import.meta.url).pathname,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: String(port),
        SNAPSHOT_URI: `file:${join(dir, 'snapshots')}`,
        EMBEDDED_PROFILES_PATH: join(dir, 'profiles.ndjson.gz'),
      },
    });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });

    const deadline = Date.now() + 90_000;
    while (!/Serving function/.test(output) || !/curl -i '([^']+)'/.test(output)) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`npm start did not serve:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(output).toContain('Demo data created');
    const url = /curl -i '([^']+)'/.exec(output)?.[1] as string;
    expect(url.startsWith(`http://127.0.0.1:${port}/?id=`)).toBe(true);

    // The first request may land while the snapshots are still loading (503, Retry-After).
    let res = await fetch(url);
    while (res.status === 503 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      res = await fetch(url);
    }
    expect(res.status).toBe(200);
    const keys = orderedKeys(await res.text());
    expect(keys.length).toBeGreaterThanOrEqual(3);
    expect(url.endsWith(keys[0] as string)).toBe(true);
  }, 120_000);
});
