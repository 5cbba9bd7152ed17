import { MongoClient, type MongoClientOptions } from 'mongodb';
import { BackendUnavailableError } from '../errors.js';
import { bsonToJson } from './bson-to-json.js';
import type { CatalogDocument, CatalogSource } from './catalog-source.js';

/** Where and how to read the segment collection. */
export interface MongoCatalogOptions {
  readonly uri: string;
  readonly database: string;
  readonly collection: string;
  /** The field holding the segment id; it is renamed `id` in the snapshot. */
  readonly idField: string;
  /** Fields to copy besides the id; undefined copies every field but `_id`. */
  readonly fields: readonly string[] | undefined;
  readonly batchSize: number;
  /** Server-side limit of each find/getMore. */
  readonly maxTimeMs: number;
  readonly connectTimeoutMs: number;
}

/**
 * Streams the segment collection with a cursor: a projection (only the fields the catalog
 * keeps), a batch size, a server-side time limit, sorted by id so that unchanged data gives an
 * identical snapshot. Every document is converted to plain JSON; validation is the caller's.
 */
export class MongoCatalogSource implements CatalogSource {
  readonly description: string;
  private clientPromise: Promise<MongoClient> | undefined;

  constructor(
    private readonly options: MongoCatalogOptions,
    private readonly client?: MongoClient,
  ) {
    this.description = `mongodb ${options.database}.${options.collection}`;
  }

  async *documents(signal: AbortSignal): AsyncIterable<CatalogDocument> {
    const { idField, fields } = this.options;
    const client = await this.connect();
    const projection: Record<string, 0 | 1> = fields
      ? Object.fromEntries([idField, ...fields].map((f) => [f, 1]))
      : {};
    // _id goes unless it is the id itself: an ObjectId means nothing to API callers.
    if (idField !== '_id') projection._id = 0;
    const cursor = client
      .db(this.options.database)
      .collection(this.options.collection)
      .find(
        {},
        {
          projection,
          sort: { [idField]: 1 },
          batchSize: this.options.batchSize,
          maxTimeMS: this.options.maxTimeMs,
        },
      );
    const abort = () => void cursor.close().catch(() => undefined);
    signal.addEventListener('abort', abort, { once: true });
    try {
      for await (const doc of cursor) {
        if (signal.aborted) throw signal.reason;
        const { [idField]: id, ...rest } = doc as Record<string, unknown>;
        yield Object.fromEntries([
          ['id', bsonToJson(id)],
          ...Object.entries(rest).map(([k, v]) => [k, bsonToJson(v)]),
        ]) as CatalogDocument;
      }
      if (signal.aborted) throw signal.reason;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new BackendUnavailableError('mongodb', `reading ${this.description} failed`, {
        cause: err,
      });
    } finally {
      signal.removeEventListener('abort', abort);
      await cursor.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const pending = this.clientPromise;
    this.clientPromise = undefined;
    if (pending && !this.client) await (await pending.catch(() => undefined))?.close();
  }

  private connect(): Promise<MongoClient> {
    this.clientPromise ??= (async () => {
      const client = this.client ?? new MongoClient(this.options.uri, this.clientOptions());
      await client.connect();
      return client;
    })().catch((err: unknown) => {
      this.clientPromise = undefined; // the next run connects afresh
      throw new BackendUnavailableError('mongodb', 'cannot connect to MongoDB', { cause: err });
    });
    return this.clientPromise;
  }

  private clientOptions(): MongoClientOptions {
    const t = this.options.connectTimeoutMs;
    return {
      appName: 'profile-api-snapshot-catalog',
      serverSelectionTimeoutMS: t,
      connectTimeoutMS: t,
      // A socket silent for longer than a batch may take is a dead peer.
      socketTimeoutMS: this.options.maxTimeMs + t,
      readPreference: 'secondaryPreferred',
    };
  }
}
