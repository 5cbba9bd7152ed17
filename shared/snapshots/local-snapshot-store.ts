import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { PreconditionFailedError, SnapshotIntegrityError } from '../errors.js';
import { manifestName, type SnapshotKind } from './manifest.js';
import type { SnapshotStore, StoredManifest, StoredObjectInfo } from './snapshot-store.js';

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 5_000;

/**
 * A snapshot store in a local directory, for the embedded default and local runs.
 * Objects are written to a temporary name and hard-linked into place (create-only, atomic);
 * the manifest generation is the sha256 of its body, swapped under a directory lock.
 */
export class LocalSnapshotStore implements SnapshotStore {
  readonly location: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.location = `file:${this.root}`;
  }

  async readManifest(kind: SnapshotKind): Promise<StoredManifest | undefined> {
    const body = await readFile(this.path(manifestName(kind)), 'utf8').catch(ifMissing(undefined));
    return body === undefined ? undefined : { body, generation: generationOf(body) };
  }

  async replaceManifest(
    kind: SnapshotKind,
    body: string,
    expectedGeneration: string | undefined,
  ): Promise<void> {
    const target = this.path(manifestName(kind));
    await mkdir(dirname(target), { recursive: true });
    await this.withLock(`${target}.lock`, async () => {
      const current = await readFile(target, 'utf8').catch(ifMissing(undefined));
      const currentGeneration = current === undefined ? undefined : generationOf(current);
      if (currentGeneration !== expectedGeneration) {
        throw new PreconditionFailedError(`${kind} manifest changed since it was read`);
      }
      const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
      await writeFile(tmp, body);
      await rename(tmp, target);
    });
  }

  async readObject(name: string): Promise<Readable> {
    const path = this.path(name);
    const info = await stat(path).catch(ifMissing(undefined));
    if (!info?.isFile()) throw new SnapshotIntegrityError(`snapshot object ${name} is missing`);
    return createReadStream(path, { highWaterMark: 1024 * 1024 });
  }

  async writeObject(name: string, data: Readable, signal?: AbortSignal): Promise<void> {
    const target = this.path(name);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.${randomBytes(6).toString('hex')}.partial`;
    try {
      await pipeline(
        data,
        createWriteStream(tmp, { flags: 'wx' }),
        ...(signal ? [{ signal }] : []),
      );
      await link(tmp, target).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST')
          throw new PreconditionFailedError(`object ${name} already exists`);
        throw err;
      });
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Local directories have no lifecycle rules: old versions stay until deleted by hand. */
  async markSuperseded(): Promise<void> {}

  async deleteObject(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }

  async describeObjects(prefix: string): Promise<StoredObjectInfo[]> {
    const names = await this.listObjects(prefix);
    const infos: StoredObjectInfo[] = [];
    for (const name of names) {
      const info = await stat(this.path(name)).catch(ifMissing(undefined));
      if (info?.isFile()) infos.push({ name, createdAt: info.mtimeMs, customTime: undefined });
    }
    return infos;
  }

  async listObjects(prefix: string): Promise<string[]> {
    const slash = prefix.lastIndexOf('/');
    const dir = slash < 0 ? '' : prefix.slice(0, slash + 1);
    const entries = await readdir(this.path(dir || '.')).catch(ifMissing([] as string[]));
    return entries
      .map((entry) => `${dir}${entry}`)
      .filter((name) => name.startsWith(prefix) && !/\.(partial|tmp|lock)$/.test(name))
      .sort();
  }

  private path(name: string): string {
    const full = resolve(this.root, name);
    if (full !== this.root && !full.startsWith(this.root + sep)) {
      throw new SnapshotIntegrityError(`object name ${name} escapes the snapshot directory`);
    }
    return full;
  }

  private async withLock<T>(lockDir: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    for (;;) {
      try {
        await mkdir(lockDir);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const held = await stat(lockDir).catch(ifMissing(undefined));
        // A writer that died holding the lock must not block publishing forever.
        if (held && Date.now() - held.mtimeMs > LOCK_STALE_MS) {
          await rm(lockDir, { recursive: true, force: true });
        } else if (Date.now() - started > LOCK_WAIT_MS) {
          throw new PreconditionFailedError(`timed out waiting for ${lockDir}`);
        } else {
          await sleep(10);
        }
      }
    }
    try {
      return await fn();
    } finally {
      await rm(lockDir, { recursive: true, force: true });
    }
  }
}

function generationOf(body: string): string {
  return createHash('sha256').update(body).digest('hex');
}

function ifMissing<T>(fallback: T): (err: NodeJS.ErrnoException) => T {
  return (err) => {
    if (err.code === 'ENOENT') return fallback;
    throw err;
  };
}
