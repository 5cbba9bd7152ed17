import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type File, Storage, type StorageOptions } from '@google-cloud/storage';
import { ConfigError, PreconditionFailedError, SnapshotIntegrityError } from '../errors.js';
import { manifestName, type SnapshotKind } from './manifest.js';
import type { SnapshotStore, StoredManifest } from './snapshot-store.js';

/** Limits of every GCS call the store makes. */
export interface GcsSnapshotStoreOptions {
  /** Per HTTP request. */
  readonly requestTimeoutMs: number;
  /** Resumable upload chunk: bounds upload memory and lets a failed chunk be retried. */
  readonly uploadChunkBytes?: number;
}

const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Snapshots in a GCS bucket under a prefix (`gs://bucket/prefix`). Objects are created with
 * `ifGenerationMatch=0` (never overwritten); the manifest is replaced with
 * `ifGenerationMatch=<generation read>`, so of two racing publishers exactly one wins.
 */
export class GcsSnapshotStore implements SnapshotStore {
  readonly location: string;
  private readonly bucketName: string;
  private readonly prefix: string;
  private storage: Storage | undefined;

  constructor(
    uri: string,
    private readonly options: GcsSnapshotStoreOptions,
    storage?: Storage,
  ) {
    const match = /^gs:\/\/([^/]+)\/?(.*)$/.exec(uri);
    if (!match?.[1]) throw new ConfigError(`SNAPSHOT_URI: not a gs:// URI: ${uri}`);
    this.bucketName = match[1];
    const prefix = (match[2] ?? '').replace(/\/+$/, '');
    this.prefix = prefix === '' ? '' : `${prefix}/`;
    this.location = `gs://${this.bucketName}/${this.prefix}`;
    this.storage = storage;
  }

  async readManifest(kind: SnapshotKind): Promise<StoredManifest | undefined> {
    const file = this.file(manifestName(kind));
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
        const [body] = await this.file(manifestName(kind), generation).download({
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
  ): Promise<void> {
    const file = this.file(manifestName(kind));
    try {
      await file.save(body, {
        resumable: false,
        contentType: 'application/json',
        metadata: { cacheControl: 'no-store' },
        preconditionOpts: { ifGenerationMatch: expectedGeneration ?? 0 },
      });
    } catch (err) {
      if (statusOf(err) !== 412) throw err;
      // A retried request whose first attempt succeeded also sees 412: check what is there.
      const current = await this.readManifest(kind);
      if (current?.body === body) return;
      throw new PreconditionFailedError(`${kind} manifest changed since it was read`, {
        cause: err,
      });
    }
  }

  async readObject(name: string): Promise<Readable> {
    // Integrity is checked against the manifest's sha256 by the reader; skip the client's own
    // crc32c pass over every byte.
    return this.file(name).createReadStream({ validation: false });
  }

  async writeObject(name: string, data: Readable): Promise<void> {
    try {
      await pipeline(
        data,
        this.file(name).createWriteStream({
          resumable: true,
          chunkSize: this.options.uploadChunkBytes ?? DEFAULT_CHUNK_BYTES,
          contentType: name.endsWith('.json.gz') ? 'application/json' : 'application/x-ndjson',
          preconditionOpts: { ifGenerationMatch: 0 },
        }),
      );
    } catch (err) {
      if (statusOf(err) === 412) {
        throw new PreconditionFailedError(`object ${name} already exists`, { cause: err });
      }
      throw err;
    }
  }

  async deleteObject(name: string): Promise<void> {
    await this.file(name).delete({ ignoreNotFound: true });
  }

  async listObjects(prefix: string): Promise<string[]> {
    const [files] = await this.bucket().getFiles({
      prefix: `${this.prefix}${prefix}`,
      autoPaginate: true,
    });
    return files.map((f) => f.name.slice(this.prefix.length)).sort();
  }

  private bucket() {
    this.storage ??= new Storage(this.storageOptions());
    return this.storage.bucket(this.bucketName);
  }

  private file(name: string, generation?: string): File {
    if (name.includes('..')) throw new SnapshotIntegrityError(`bad object name ${name}`);
    return this.bucket().file(
      `${this.prefix}${name}`,
      generation ? { generation: Number(generation) } : {},
    );
  }

  private storageOptions(): StorageOptions {
    return {
      timeout: this.options.requestTimeoutMs,
      retryOptions: {
        autoRetry: true,
        maxRetries: 3,
        maxRetryDelay: 8,
        totalTimeout: Math.ceil((this.options.requestTimeoutMs * 4) / 1000),
      },
    };
  }
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}
