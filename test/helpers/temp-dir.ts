import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/** A new empty temporary directory. */
export function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'profile-api-'));
}

export function removeTempDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** A fresh temporary directory per call, removed after the current test. */
export function useTempDirs(): () => Promise<string> {
  const made: string[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map(removeTempDir));
  });
  return async () => {
    const dir = await makeTempDir();
    made.push(dir);
    return dir;
  };
}
