import {
  Decimal128,
  Double,
  Long,
  MongoClient,
  type MongoClientOptions,
  MongoNetworkError,
  MongoNetworkTimeoutError,
  MongoOperationTimeoutError,
  MongoServerError,
  ObjectId,
} from 'mongodb';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MongoEmulator, type RecordedCommand } from '../emulators/mongo-emulator.js';

const DB = 'profiles';
const COLLECTION = 'users';
const TOTAL = 2_500;

let emulator: MongoEmulator;
const clients: MongoClient[] = [];

function connect(options: MongoClientOptions = {}): MongoClient {
  const client = new MongoClient(emulator.uri, { serverSelectionTimeoutMS: 2000, ...options });
  clients.push(client);
  return client;
}

function named(name: string): RecordedCommand[] {
  return emulator.commands.filter((command) => command.name === name);
}

// Type names rather than instanceof: the driver loads bson's CommonJS build, `import 'bson'` the ESM one.
function bsonType(value: unknown): string {
  return typeof value === 'object' && value !== null && '_bsontype' in value
    ? String(value._bsontype)
    : typeof value;
}

function mixedDocs(count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => ({
    _id: new ObjectId(),
    name: `user-${i}`,
    size: i,
    ratio: new Double(i + 0.5),
    big: Long.fromNumber(i * 1_000_000_000),
    price: Decimal128.fromString(`${i}.25`),
    type: i % 3 === 0 ? 'x' : 'y',
    seenAt: new Date(Date.UTC(2024, 0, 1) + i * 1000),
    address: { city: `city-${i % 7}`, zip: i },
    tags: ['a', `t${i % 5}`],
  }));
}

async function drain(cursor: AsyncIterable<unknown>, into: unknown[]): Promise<void> {
  for await (const doc of cursor) into.push(doc);
}

beforeEach(async () => {
  emulator = await MongoEmulator.start();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await emulator.close();
});

describe('MongoEmulator with the real mongodb driver', () => {
  it('handshakes over legacy OP_QUERY, then answers ping and buildInfo over OP_MSG', async () => {
    const client = connect();
    await client.connect();
    await client.db('admin').command({ ping: 1 });
    const info = await client.db('admin').admin().buildInfo();

    expect(info.version).toBe('7.0.0');
    const first = emulator.commands[0];
    expect(first?.db).toBe('admin');
    expect(first?.name).toBe('ismaster');
    expect(first?.body.helloOk).toBe(true);
    expect(named('ping')).toHaveLength(1);
  });

  it('inserts 2,500 mixed documents and streams them back in batches with a projection', async () => {
    const client = connect();
    const users = client.db(DB).collection(COLLECTION);
    const docs = mixedDocs(TOTAL);
    const inserted = await users.insertMany(docs);
    expect(inserted.insertedCount).toBe(TOTAL);

    const stored = emulator.documents(DB, COLLECTION);
    expect(stored).toHaveLength(TOTAL);
    const sample = stored[7];
    expect([sample?.size, sample?.ratio, sample?.big].map(bsonType)).toEqual([
      'Int32',
      'Double',
      'Long',
    ]);
    expect(String(sample?.price)).toBe('7.25');
    expect(sample?.seenAt).toEqual(docs[7]?.seenAt);
    expect(named('insert').map((c) => (c.body.documents as unknown[]).length)).toEqual([TOTAL]);

    const seen: unknown[] = [];
    const cursor = users.find(
      {},
      { projection: { name: 1, size: 1 }, batchSize: 500, maxTimeMS: 5000 },
    );
    await drain(cursor, seen);

    expect(seen).toHaveLength(TOTAL);
    expect(seen[0]).toEqual({ _id: docs[0]?._id, name: 'user-0', size: 0 });
    expect(seen.every((doc, i) => (doc as { size: number }).size === i)).toBe(true);
    expect(seen.every((doc) => Object.keys(doc as object).length === 3)).toBe(true);

    const finds = named('find');
    expect(finds).toHaveLength(1);
    expect(finds[0]?.body).toMatchObject({
      find: COLLECTION,
      filter: {},
      projection: { name: 1, size: 1 },
      batchSize: 500,
      maxTimeMS: 5000,
    });
    const getMores = named('getMore');
    expect(getMores).toHaveLength(4);
    for (const getMore of getMores) {
      expect(getMore.body).toMatchObject({ collection: COLLECTION, batchSize: 500 });
      // The driver only forwards maxAwaitTimeMS (tailable cursors) as a getMore maxTimeMS.
      expect(getMore.body.maxTimeMS).toBeUndefined();
    }

    // promoteValues: false shows the stored BSON types survive the round trip.
    const raw = await users.findOne({ name: 'user-7' }, { promoteValues: false });
    expect(bsonType(raw?.size)).toBe('Int32');
    expect(raw?.big).toEqual(Long.fromNumber(7_000_000_000));
  });

  it('filters by equality, $in, array membership and sorts', async () => {
    emulator.seed(DB, COLLECTION, mixedDocs(30));
    const users = connect().db(DB).collection(COLLECTION);

    const xs = await users.find({ type: 'x' }).toArray();
    expect(xs.map((doc) => doc.size)).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
    const some = await users.find({ size: { $in: [2, 4, 99] } }).toArray();
    expect(some.map((doc) => doc.name)).toEqual(['user-2', 'user-4']);
    const tagged = await users.find({ tags: 't1' }).toArray();
    expect(tagged.map((doc) => doc.size)).toEqual([1, 6, 11, 16, 21, 26]);
    const sorted = await users.find({}, { sort: { size: -1 }, skip: 1, limit: 3 }).toArray();
    expect(sorted.map((doc) => doc.size)).toEqual([28, 27, 26]);
    const one = await users.findOne({ 'address.zip': 12 }, { projection: { _id: 0, tags: 0 } });
    expect(one).toMatchObject({ name: 'user-12' });
    expect(one).not.toHaveProperty('_id');
    expect(one).not.toHaveProperty('tags');
  });

  it('fails the for-await loop with a MongoServerError injected on the 2nd getMore', async () => {
    emulator.seed(DB, COLLECTION, mixedDocs(TOTAL));
    emulator.inject({
      command: 'getMore',
      nth: 2,
      errorCode: 50,
      errmsg: 'operation exceeded time limit',
    });
    const users = connect({ retryReads: false }).db(DB).collection(COLLECTION);

    const seen: unknown[] = [];
    const error = await drain(users.find({}, { batchSize: 500 }), seen).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(MongoServerError);
    expect(error).toMatchObject({ code: 50, codeName: 'MaxTimeMSExpired' });
    expect(seen).toHaveLength(1000);
  });

  it('fails the for-await loop with a MongoNetworkError when the 2nd getMore drops the socket', async () => {
    emulator.seed(DB, COLLECTION, mixedDocs(TOTAL));
    emulator.inject({ command: 'getMore', nth: 2, dropConnection: true });
    const users = connect().db(DB).collection(COLLECTION);

    const seen: unknown[] = [];
    const error = await drain(users.find({}, { batchSize: 500 }), seen).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(MongoNetworkError);
    expect(seen).toHaveLength(1000);
    // getMore is never retried (no retryable aspect). The network error marks the server
    // Unknown, so the cursor's cleanup killCursors waits for a re-check (~500 ms) first.
    expect(named('getMore')).toHaveLength(2);
    expect(named('killCursors')).toHaveLength(1);
  });

  it('retries a dropped find once unless retryReads is false', async () => {
    emulator.seed(DB, COLLECTION, mixedDocs(3));
    emulator.inject({ command: 'find', dropConnection: true, times: 1 });
    const retried = await connect().db(DB).collection(COLLECTION).find({}).toArray();
    expect(retried).toHaveLength(3);
    expect(named('find')).toHaveLength(2);

    emulator.inject({ command: 'find', dropConnection: true, times: 1 });
    const noRetry = connect({ retryReads: false }).db(DB).collection(COLLECTION);
    await expect(noRetry.find({}).toArray()).rejects.toBeInstanceOf(MongoNetworkError);
  });

  it('bounds a slow find with maxTimeMS (server), socketTimeoutMS or an AbortSignal (client)', async () => {
    emulator.seed(DB, COLLECTION, mixedDocs(3));
    emulator.inject({ command: 'find', delayMs: 1500 });
    const started = Date.now();

    // The emulator, like mongod, gives up at the command's maxTimeMS.
    const plain = connect().db(DB).collection(COLLECTION);
    await expect(plain.find({}, { maxTimeMS: 150 }).toArray()).rejects.toMatchObject({
      name: 'MongoServerError',
      code: 50,
      codeName: 'MaxTimeMSExpired',
    });

    const socket = connect({ socketTimeoutMS: 150, retryReads: false });
    await expect(socket.db(DB).collection(COLLECTION).find({}).toArray()).rejects.toBeInstanceOf(
      MongoNetworkTimeoutError,
    );

    // The driver turns an abort whose reason is named TimeoutError into its own timeout error.
    const aborted = plain.find({}, { signal: AbortSignal.timeout(150) }).toArray();
    await expect(aborted).rejects.toBeInstanceOf(MongoOperationTimeoutError);
    expect(Date.now() - started).toBeLessThan(1400);
  });

  it('closes the cursor on abort, which interrupts an in-flight getMore with CursorKilled', async () => {
    emulator.seed(DB, COLLECTION, mixedDocs(30));
    emulator.inject({ command: 'getMore', nth: 2, delayMs: 1500 });
    const users = connect().db(DB).collection(COLLECTION);

    const seen: unknown[] = [];
    const started = Date.now();
    const signal = AbortSignal.timeout(300);
    const error = await drain(users.find({}, { batchSize: 10, signal }), seen).catch(
      (e: unknown) => e,
    );

    // The signal does not reach getMore itself: the abort closes the cursor (killCursors on
    // another connection) and the server then fails the pending getMore.
    expect(error).toBeInstanceOf(MongoServerError);
    expect(error).toMatchObject({ code: 237, codeName: 'CursorKilled' });
    expect(seen).toHaveLength(20);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(named('killCursors')).toHaveLength(1);
  });

  it('ignores timeoutMS: the 7.x driver deprecated client-side operation timeouts', async () => {
    emulator.seed(DB, COLLECTION, mixedDocs(3));
    emulator.inject({ command: 'find', delayMs: 300 });
    const users = connect({ timeoutMS: 50 }).db(DB).collection(COLLECTION);

    await expect(users.find({}).toArray()).resolves.toHaveLength(3);
    expect(named('find')[0]?.body.maxTimeMS).toBeUndefined();
  });

  it('answers unknown commands with CommandNotFound and supports delete and drop', async () => {
    emulator.seed(DB, COLLECTION, mixedDocs(5));
    const db = connect().db(DB);

    await expect(db.command({ frobnicate: 1 })).rejects.toMatchObject({
      code: 59,
      codeName: 'CommandNotFound',
    });
    const deleted = await db.collection(COLLECTION).deleteMany({ type: 'x' });
    expect(deleted.deletedCount).toBe(2);
    expect(await db.collection(COLLECTION).deleteMany({})).toMatchObject({ deletedCount: 3 });
    await db.collection(COLLECTION).insertOne({ name: 'again' });
    expect(await db.collection(COLLECTION).drop()).toBe(true);
    expect(emulator.documents(DB, COLLECTION)).toEqual([]);
  });

  it('sees killCursors for an abandoned cursor and endSessions on client.close()', async () => {
    emulator.seed(DB, COLLECTION, mixedDocs(50));
    const client = connect();
    const cursor = client.db(DB).collection(COLLECTION).find({}, { batchSize: 10 });
    expect(await cursor.next()).not.toBeNull();
    await cursor.close();
    await client.close();

    const kill = named('killCursors');
    expect(kill).toHaveLength(1);
    expect(kill[0]?.body.killCursors).toBe(COLLECTION);
    // endSessions is sent with moreToCome (w:0), so close() does not wait for it to arrive.
    await vi.waitFor(() => expect(named('endSessions')).toHaveLength(1));
  });
});
