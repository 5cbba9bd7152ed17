import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type File, Storage, type StorageOptions } from '@google-cloud/storage';
import { untilAborted, withDeadline } from '../deadline.js';
import {
  BackendUnavailableError,
  ConfigError,
  PreconditionFailedError,
  SnapshotIntegrityError,
} from '../errors.js';
import { manifestName, type SnapshotKind } from './manifest.js';
import type { SnapshotStore, StoredManifest, StoredObjectInfo } from './snapshot-store.js';

/** Limits of every GCS call the store makes. */
export interface GcsSnapshotStoreOptions {
  /** Per HTTP request. */
  readonly requestTimeoutMs: number;
  /** Resumable upload chunk: bounds upload memory and lets a failed chunk be retried. */
  readonly uploadChunkBytes?: number;
}

const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;
const MAX_RETRIES = 3;

/**
 * Snapshots in a GCS bucket under a prefix (`gs://bucket/prefix`). Objects are created with
 * `ifGenerationMatch=0` (never overwritten); the manifest is replaced with
 * `ifGenerationMatch=<generation read>`, so of two racing publishers exactly one wins.
 */
export class GcsSnapshotStore implements SnapshotStore {
  readonly location: string;
  private readonly bucketName: string;
  private readonly prefix: string;
  private plain: Storage | undefined;
  private guarded: Storage | undefined;

  /** `clientOptions` are merged into both clients' (e.g. an `apiEndpoint`). */
  constructor(
    uri: string,
    private readonly options: GcsSnapshotStoreOptions,
    private readonly clientOptions: StorageOptions = {},
  ) {
    const match = /^gs:\/\/([^/]+)\/?(.*)$/.exec(uri);
    if (!match?.[1]) throw new ConfigError(`SNAPSHOT_URI: not a gs:// URI: ${uri}`);
    this.bucketName = match[1];
    const prefix = (match[2] ?? '').replace(/\/+$/, '');
    this.prefix = prefix === '' ? '' : `${prefix}/`;
    this.location = `gs://${this.bucketName}/${this.prefix}`;
  }

  async readManifest(
    kind: SnapshotKind,
    signal?: AbortSignal,
  ): Promise<StoredManifest | undefined> {
    return this.bounded(this.readManifestOnce(kind), `reading the ${kind} manifest`, signal);
  }

  private async readManifestOnce(kind: SnapshotKind): Promise<StoredManifest | undefined> {
    const file = this.file(manifestName(kind), 'plain');
    // Metadata first, then that exact generation: body and generation always belong together.
    for (let attempt = 0; attempt < 3; attempt++) {
      const metadata = await file.getMetadata().then(
        ([m]) => m,
        (err: unknown) => {
          if (statusOf(err) === 404) return undefined;
          throw err;
        },
      );
      if (!metadata) return undefined;
      const generation = String(metadata.generation);
      try {
        const [body] = await this.file(manifestName(kind), 'plain', generation).download({
          validation: false,
        });
        return { body: body.toString('utf8'), generation };
      } catch (err) {
        if (statusOf(err) !== 404) throw err; // replaced between the two calls: read again
      }
    }
    throw new PreconditionFailedError(`${kind} manifest keeps changing while being read`);
  }

  async replaceManifest(
    kind: SnapshotKind,
    body: string,
    expectedGeneration: string | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    const file = this.file(manifestName(kind), 'guarded');
    try {
      await this.bounded(
        file.save(body, {
          resumable: false,
          contentType: 'application/json',
          metadata: { cacheControl: 'no-store' },
          preconditionOpts: { ifGenerationMatch: expectedGeneration ?? 0 },
        }),
        `replacing the ${kind} manifest`,
        signal,
      );
    } catch (err) {
      if (statusOf(err) !== 412) throw err;
      // A retried request whose first attempt succeeded also sees 412: check what is there.
      const current = await this.readManifest(kind, signal);
      if (current?.body === body) return;
      throw new PreconditionFailedError(`${kind} manifest changed since it was read`, {
        cause: err,
      });
    }
  }

  async readObject(name: string): Promise<Readable> {
    // Integrity is checked against the manifest's sha256 by the reader; skip the client's own
    // crc32c pass over every byte.
    const download = this.file(name, 'plain').createReadStream({ validation: false });
    const out = new PassThrough();
    // The client calls pipeline() into its stream when a 2xx response arrives; if that stream
    // was destroyed first, pipeline() throws outside any handler (storage 8.4.0) and takes the
    // process down. So a download we give up on is destroyed only once a 2xx response is in;
    // until then it is left to finish or fail on its own (its retries included).
    let streaming = false;
    let givenUp = false;
    const destroyLater = () => setImmediate(() => download.destroy());
    download.on('response', (res: { statusCode?: number }) => {
      if ((res.statusCode ?? 0) >= 300) return;
      streaming = true;
      if (givenUp) destroyLater();
    });
    download.on('error', (err) => out.destroy(err));
    download.pipe(out);
    out.on('close', () => {
      if (download.destroyed || givenUp) return;
      givenUp = true;
      if (streaming) destroyLater();
      else download.resume(); // drain whatever still comes
    });
    return out;
  }

  async writeObject(name: string, data: Readable, signal?: AbortSignal): Promise<void> {
    const upload = this.file(name, 'guarded').createWriteStream({
      resumable: true,
      chunkSize: this.options.uploadChunkBytes ?? DEFAULT_CHUNK_BYTES,
      contentType: name.endsWith('.json.gz') ? 'application/json' : 'application/x-ndjson',
      preconditionOpts: { ifGenerationMatch: 0 },
    });
    try {
      // The signal ends a stalled upload too: pipeline() destroys both ends, and the abort
      // wins the race even if the client never settles its stream.
      const done = pipeline(data, upload, ...(signal ? [{ signal }] : []));
      await (signal ? untilAborted(done, signal) : done);
    } catch (err) {
      if (!upload.destroyed) upload.destroy();
      if (signal?.aborted) throw signal.reason;
      if (statusOf(err) === 412) {
        throw new PreconditionFailedError(`object ${name} already exists`, { cause: err });
      }
      throw err;
    }
  }

  async markSuperseded(name: string, signal?: AbortSignal): Promise<void> {
    await this.bounded(
      this.file(name, 'plain').setMetadata({ customTime: new Date().toISOString() }),
      `marking ${name} superseded`,
      signal,
    );
  }

  async deleteObject(name: string, signal?: AbortSignal): Promise<void> {
    await this.bounded(
      this.file(name, 'plain').delete({ ignoreNotFound: true }),
      `deleting ${name}`,
      signal,
    );
  }

  async listObjects(prefix: string, signal?: AbortSignal): Promise<string[]> {
    return (await this.describeObjects(prefix, signal)).map((o) => o.name);
  }

  async describeObjects(prefix: string, signal?: AbortSignal): Promise<StoredObjectInfo[]> {
    const [files] = await this.bounded(
      this.bucket('plain').getFiles({ prefix: `${this.prefix}${prefix}`, autoPaginate: true }),
      `listing ${prefix}`,
      signal,
    );
    return files
      .map((f) => {
        const custom = f.metadata.customTime;
        return {
          name: f.name.slice(this.prefix.length),
          createdAt: Date.parse(String(f.metadata.timeCreated)),
          customTime: custom ? Date.parse(String(custom)) : undefined,
        };
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Two clients. 'guarded' serves only precondition-guarded writes (uploads with
   * ifGenerationMatch=0, the manifest swap) and keeps the library's retries. 'plain' serves
   * everything else without retries, because (storage 8.4.0):
   * - a retried streaming download makes teeny-request call pipeline() on a destroyed stream,
   *   an unhandled exception that kills the process;
   * - delete() or setMetadata() without a precondition switch autoRetry off on the whole
   *   Storage instance, for every later call.
   * A failed read is retried by the snapshot cache, a failed job by the scheduler.
   */
  private bucket(purpose: 'plain' | 'guarded') {
    const retryOptions = {
      autoRetry: purpose === 'guarded',
      maxRetries: MAX_RETRIES,
      maxRetryDelay: 8,
      totalTimeout: Math.ceil((this.options.requestTimeoutMs * (MAX_RETRIES + 1)) / 1000),
    };
    const make = () =>
      new Storage({ timeout: this.options.requestTimeoutMs, ...this.clientOptions, retryOptions });
    if (purpose === 'plain') {
      this.plain ??= make();
      return this.plain.bucket(this.bucketName);
    }
    this.guarded ??= make();
    return this.guarded.bucket(this.bucketName);
  }

  private file(name: string, purpose: 'plain' | 'guarded', generation?: string): File {
    if (name.includes('..')) throw new SnapshotIntegrityError(`bad object name ${name}`);
    return this.bucket(purpose).file(
      `${this.prefix}${name}`,
      generation ? { generation: Number(generation) } : {},
    );
  }

  /**
   * The client's own `timeout` is not applied on Node (its fetch ignores it), so every call gets
   * a deadline here: the per-request timeout times the attempts the retry policy allows.
   */
  private bounded<T>(work: Promise<T>, what: string, signal?: AbortSignal): Promise<T> {
    const ms = this.options.requestTimeoutMs * (MAX_RETRIES + 1);
    const timed = withDeadline(
      work,
      ms,
      () => new BackendUnavailableError('gcs', `timed out ${what}`),
    );
    return signal ? untilAborted(timed, signal) : timed;
  }
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}
