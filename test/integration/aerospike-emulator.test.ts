import { once } from 'node:events';
import { connect } from 'node:net';
import Aerospike, { type AerospikeError, type BatchResult, type Client } from 'aerospike';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AerospikeEmulator,
  type SeedKey,
  type SeedValue,
} from '../emulators/aerospike-emulator.js';

const NS = 'profiles';
const TOTAL_TIMEOUT_MS = 500;
// Short, single-attempt policies so that every failure below surfaces well inside the test.
const quick = { socketTimeout: 200, totalTimeout: TOTAL_TIMEOUT_MS, maxRetries: 0 };

let emulator: AerospikeEmulator;
let client: Client;

/** The values a user key can take; the client keeps each type apart (its digest differs). */
type KeyValue = string | number | bigint | Buffer;

function key(set: string | null, id: KeyValue, ns = NS): Aerospike.Key {
  return new Aerospike.Key(ns, set, id);
}

async function failure(promise: Promise<unknown>): Promise<AerospikeError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(Aerospike.AerospikeError);
    return error as AerospikeError;
  }
  throw new Error('expected the call to fail');
}

function readAll(keys: Aerospike.Key[]): Promise<BatchResult[]> {
  return client.batchRead(keys.map((k) => ({ key: k, readAllBins: true })));
}

/** Sends one proto on a fresh socket and returns the first reply proto (type and body). */
async function exchange(type: number, body: Buffer): Promise<{ type: number; body: Buffer }> {
  const socket = connect(emulator.port, emulator.host);
  await once(socket, 'connect');
  const header = Buffer.alloc(8);
  header.writeUInt8(2, 0);
  header.writeUInt8(type, 1);
  header.writeUIntBE(body.length, 2, 6);
  socket.write(Buffer.concat([header, body]));
  let received = Buffer.alloc(0);
  for await (const chunk of socket) {
    received = Buffer.concat([received, chunk as Buffer]);
    if (received.length >= 8 && received.length >= 8 + received.readUIntBE(2, 6)) break;
  }
  socket.destroy();
  return { type: received.readUInt8(1), body: received.subarray(8) };
}

/** A single-record read message with the given fields (type byte, data). */
function readMessage(fields: [number, Buffer][], claimedFields = fields.length): Buffer {
  const header = Buffer.alloc(22);
  header.writeUInt8(22, 0);
  header.writeUInt8(0x01 | 0x02, 1);
  header.writeUInt16BE(claimedFields, 18);
  const encoded = fields.map(([type, data]) => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(data.length + 1, 0);
    head.writeUInt8(type, 4);
    return Buffer.concat([head, data]);
  });
  return Buffer.concat([header, ...encoded]);
}

beforeAll(async () => {
  emulator = await AerospikeEmulator.start();
  client = await Aerospike.connect({
    hosts: [{ addr: emulator.host, port: emulator.port }],
    connTimeoutMs: 1000,
    // Expected failures below would otherwise log every one of them at ERROR level.
    log: { level: Aerospike.log.OFF },
    policies: {
      read: new Aerospike.ReadPolicy(quick),
      write: new Aerospike.WritePolicy(quick),
      remove: new Aerospike.RemovePolicy(quick),
      operate: new Aerospike.OperatePolicy(quick),
      batch: new Aerospike.BatchPolicy(quick),
    },
  });
});

afterAll(async () => {
  // The client's event loop stays referenced (even after a failed connect) and keeps vitest alive.
  if (client) client.close(true);
  else Aerospike.releaseEventLoop();
  await emulator?.close();
});

beforeEach(async () => {
  await emulator.setMode({ kind: 'normal' });
  await emulator.resetStats();
});

describe('AerospikeEmulator with the real aerospike client', () => {
  it('round-trips every bin type through put and get', async () => {
    const bins = {
      name: 'Ada',
      visits: 42,
      huge: 2n ** 60n,
      score: 2.5,
      exact: new Aerospike.Double(3),
      raw: Buffer.from([0, 1, 254, 255]),
      ids: [3, 1, 2],
      segments: { '1001': 1767225600, '7': 1767312000 },
      nested: { tags: ['a', 'b'], history: [{ at: 1, seg: [5, 6] }], deep: { x: { y: [1, [2]] } } },
    };
    await client.put(key('users', 'ada'), bins);
    const record = await client.get(key('users', 'ada'));
    expect(record.bins).toEqual({ ...bins, exact: 3 });
    expect(typeof record.bins.visits).toBe('number');
    expect(typeof record.bins.huge).toBe('bigint');
    expect(Buffer.isBuffer(record.bins.raw)).toBe(true);
    expect(record.bins.segments).not.toBeInstanceOf(Map);
    expect(record.gen).toBe(1);
    expect(record.ttl).toBe(-1);

    const named = await client.select(key('users', 'ada'), ['name', 'absent']);
    expect(named.bins).toEqual({ name: 'Ada' });

    await client.put(key('users', 'ada'), { visits: 43, name: null }, { ttl: 3600 });
    const updated = await client.get(key('users', 'ada'));
    expect(updated.gen).toBe(2);
    expect(updated.ttl).toBeGreaterThan(3590);
    expect(updated.bins).not.toHaveProperty('name');
    expect(updated.bins.visits).toBe(43);

    const stats = await emulator.stats();
    expect(stats).toMatchObject({ reads: 3, writes: 2, batchReads: 0 });
  });

  it('reports a missing record as ERR_RECORD_NOT_FOUND', async () => {
    const error = await failure(client.get(key('users', 'nobody')));
    expect(error.code).toBe(Aerospike.status.ERR_RECORD_NOT_FOUND);
  });

  it('batch-reads five keys across two sets in one round trip, in order', async () => {
    await client.put(key('users', 'b1'), { name: 'one', n: 1 });
    await client.put(key('users', 'b2'), { name: 'two', n: 2 });
    await client.put(key('segments', 'b3'), { ids: [7, 8] });
    await emulator.resetStats();

    const keys = [
      key('users', 'b1'),
      key('users', 'missing-1'),
      key('segments', 'b3'),
      key('users', 'b2'),
      key('segments', 'missing-2'),
    ];
    const results = await readAll(keys);
    expect(results.map((r) => r.status)).toEqual([0, 2, 0, 0, 2]);
    expect(results[0]?.record.bins).toEqual({ name: 'one', n: 1 });
    expect(results[2]?.record.bins).toEqual({ ids: [7, 8] });
    expect(results[3]?.record.bins).toEqual({ name: 'two', n: 2 });
    expect(await emulator.stats()).toMatchObject({ batchReads: 1, batchKeys: 5, reads: 0 });

    // Named bins and header-only rows are separate row shapes in the batch request.
    const mixed = await client.batchRead([
      { key: key('users', 'b1'), bins: ['n'] },
      { key: key('users', 'b2'), bins: ['n'] },
      { key: key('segments', 'b3'), readAllBins: false },
    ]);
    expect(mixed.map((r) => r.record.bins)).toEqual([{ n: 1 }, { n: 2 }, {}]);
    const exists = await client.batchExists([key('users', 'b1'), key('users', 'nope')]);
    expect(exists.map((r) => r.status)).toEqual([0, 2]);
  });

  it('splits a large batch reply across several protos', async () => {
    const keys = Array.from({ length: 150 }, (_, i) => key('bulk', `k${i}`));
    const blob = 'x'.repeat(2000);
    for (const [i, k] of keys.entries()) await client.put(k, { i, blob });
    const results = await readAll(keys);
    expect(results.every((r, i) => r.status === 0 && r.record.bins.i === i)).toBe(true);
    expect(await emulator.recordCount(NS, 'bulk')).toBe(150);
  });

  it('answers exists and remove, and counts records per namespace', async () => {
    await client.put(key(null, 'gone'), { v: 1 });
    const before = await emulator.recordCount(NS);
    expect(await client.exists(key(null, 'gone'))).toBe(true);
    await client.remove(key(null, 'gone'));
    expect(await client.exists(key(null, 'gone'))).toBe(false);
    expect(await emulator.recordCount(NS)).toBe(before - 1);
    const error = await failure(client.remove(key(null, 'gone')));
    expect(error.code).toBe(Aerospike.status.ERR_RECORD_NOT_FOUND);
    expect(await emulator.stats()).toMatchObject({ writes: 1, deletes: 2, reads: 2 });
  });

  it('enforces create-only, update-only and generation policies', async () => {
    await client.put(key('users', 'policy'), { v: 1 });
    const create = new Aerospike.WritePolicy({ ...quick, exists: Aerospike.policy.exists.CREATE });
    const exists = await failure(client.put(key('users', 'policy'), { v: 2 }, {}, create));
    expect(exists.code).toBe(Aerospike.status.ERR_RECORD_EXISTS);
    const update = new Aerospike.WritePolicy({ ...quick, exists: Aerospike.policy.exists.UPDATE });
    const absent = await failure(client.put(key('users', 'no-policy'), { v: 2 }, {}, update));
    expect(absent.code).toBe(Aerospike.status.ERR_RECORD_NOT_FOUND);
    const genEq = new Aerospike.WritePolicy({ ...quick, gen: Aerospike.policy.gen.EQ });
    const stale = await failure(client.put(key('users', 'policy'), { v: 3 }, { gen: 7 }, genEq));
    expect(stale.code).toBe(Aerospike.status.ERR_RECORD_GENERATION);
    await client.put(key('users', 'policy'), { v: 4 }, { gen: 1 }, genEq);
    expect((await client.get(key('users', 'policy'))).bins).toEqual({ v: 4 });
  });

  it('accepts compressed requests', async () => {
    const compressed = new Aerospike.WritePolicy({ ...quick, compress: true });
    const text = 'profile '.repeat(1000);
    await client.put(key('users', 'zip'), { text }, {}, compressed);
    const read = new Aerospike.ReadPolicy({ ...quick, compress: true });
    expect((await client.get(key('users', 'zip'), read)).bins).toEqual({ text });
  });

  it('rejects a namespace the server does not have', async () => {
    const error = await failure(client.get(key('users', 'x', 'nowhere')));
    expect(error.code).toBe(Aerospike.status.ERR_NAMESPACE_NOT_FOUND);
  });

  it('answers raw protocol edge cases like a server', async () => {
    const info = await exchange(1, Buffer.from('build\nno-such-thing\nnamespaces\n'));
    expect(info.type).toBe(1);
    expect(info.body.toString()).toBe(
      'build\t8.0.0.0\nno-such-thing\t\nnamespaces\tprofiles;test\n',
    );

    const digest = Buffer.alloc(20, 7);
    const unknownNs = readMessage([
      [0, Buffer.from('nowhere')],
      [4, digest],
    ]);
    expect((await exchange(3, unknownNs)).body.readUInt8(5)).toBe(20);
    const missing = readMessage([
      [0, Buffer.from(NS)],
      [4, digest],
    ]);
    expect((await exchange(3, missing)).body.readUInt8(5)).toBe(2);
    const truncated = readMessage([[0, Buffer.from(NS)]], 3);
    expect((await exchange(3, truncated)).body.readUInt8(5)).toBe(4);
  });

  describe('failure modes', () => {
    const present = key('users', 'm1');
    const keys = [present, key('users', 'm2')];

    beforeAll(async () => {
      await client.put(present, { v: 1 });
    });

    async function expectRecovery(): Promise<void> {
      await emulator.setMode({ kind: 'normal' });
      expect((await readAll(keys)).map((r) => r.status)).toEqual([0, 2]);
    }

    it('times out against a silent server, then recovers', async () => {
      await emulator.setMode({ kind: 'silent' });
      const started = Date.now();
      const error = await failure(readAll(keys));
      expect(error.code).toBe(Aerospike.status.ERR_TIMEOUT);
      expect(Date.now() - started).toBeLessThan(3000);
      // Stay silent across a tend cycle (1 s): the cluster must survive unanswered info calls.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      await expectRecovery();
    });

    it('answers late in slow mode: fine under the timeout, a timeout above it', async () => {
      await emulator.setMode({ kind: 'slow', delayMs: 50 });
      expect((await readAll(keys)).map((r) => r.status)).toEqual([0, 2]);
      await emulator.setMode({ kind: 'slow', delayMs: TOTAL_TIMEOUT_MS + 1000 });
      const started = Date.now();
      const error = await failure(readAll(keys));
      expect(error.code).toBe(Aerospike.status.ERR_TIMEOUT);
      expect(Date.now() - started).toBeLessThan(3000);
      await expectRecovery();
    });

    it('fails fast when the server drops connections, then recovers', async () => {
      await emulator.setMode({ kind: 'drop' });
      const started = Date.now();
      const error = await failure(readAll(keys));
      expect(error.code).toBe(Aerospike.status.ERR_ASYNC_CONNECTION);
      expect(Date.now() - started).toBeLessThan(3000);
      const single = await failure(client.get(present));
      expect(single.code).toBe(Aerospike.status.ERR_ASYNC_CONNECTION);
      await expectRecovery();
    });
  });
});

describe('typed keys, digests and seeding', () => {
  function hex(k: Aerospike.Key): string {
    // Every command writes the digest it computed back onto the key object.
    if (!k.digest) throw new Error('the client left no digest on the key');
    return k.digest.toString('hex');
  }

  const { OK, ERR_RECORD_NOT_FOUND } = Aerospike.status;

  it('keeps the integer key 9876543210 and the string key "9876543210" apart (client writes)', async () => {
    await client.put(key('typed-client', 9876543210), { from: 'integer' });
    expect((await client.get(key('typed-client', 9876543210))).bins).toEqual({ from: 'integer' });
    expect((await failure(client.get(key('typed-client', '9876543210')))).code).toBe(
      ERR_RECORD_NOT_FOUND,
    );

    await client.put(key('typed-client', '1234567'), { from: 'string' });
    expect((await client.get(key('typed-client', '1234567'))).bins).toEqual({ from: 'string' });
    expect((await failure(client.get(key('typed-client', 1234567)))).code).toBe(
      ERR_RECORD_NOT_FOUND,
    );

    const batch = await readAll([key('typed-client', 9876543210), key('typed-client', 1234567)]);
    expect(batch.map((r) => r.status)).toEqual([OK, ERR_RECORD_NOT_FOUND]);
  });

  it('keeps integer and string keys apart for seeded records', async () => {
    await emulator.put(NS, 'typed-seed', { type: 'integer', value: '9876543210' }, { from: 'int' });
    expect((await client.get(key('typed-seed', 9876543210))).bins).toEqual({ from: 'int' });
    expect((await failure(client.get(key('typed-seed', '9876543210')))).code).toBe(
      ERR_RECORD_NOT_FOUND,
    );

    await emulator.put(NS, 'typed-seed', { type: 'string', value: '1234567' }, { from: 'str' });
    expect((await client.get(key('typed-seed', '1234567'))).bins).toEqual({ from: 'str' });
    expect((await failure(client.get(key('typed-seed', 1234567)))).code).toBe(ERR_RECORD_NOT_FOUND);

    // Both spellings of one id can exist side by side, each its own record.
    await emulator.put(NS, 'typed-seed', { type: 'string', value: '9876543210' }, { from: 'str' });
    expect(await emulator.recordCount(NS, 'typed-seed')).toBe(3);
    expect((await client.get(key('typed-seed', 9876543210))).bins).toEqual({ from: 'int' });
    expect((await client.get(key('typed-seed', '9876543210'))).bins).toEqual({ from: 'str' });
  });

  const blob = Buffer.from([0, 1, 254, 255]);
  const keyCases: [string, SeedKey, KeyValue][] = [
    ['string', { type: 'string', value: 'ada' }, 'ada'],
    ['digit string', { type: 'string', value: '9876543210' }, '9876543210'],
    ['non-ASCII string', { type: 'string', value: 'Zoë ✓ 名' }, 'Zoë ✓ 名'],
    ['integer', { type: 'integer', value: '9876543210' }, 9876543210],
    ['zero', { type: 'integer', value: '0' }, 0],
    ['negative integer', { type: 'integer', value: '-1' }, -1],
    ['large negative integer', { type: 'integer', value: '-9876543210' }, -9876543210],
    ['integer above 2^53 (BigInt)', { type: 'integer', value: '9007199254740993' }, 2n ** 53n + 1n],
    ['int64 max (BigInt)', { type: 'integer', value: '9223372036854775807' }, 2n ** 63n - 1n],
    ['int64 min (BigInt)', { type: 'integer', value: '-9223372036854775808' }, -(2n ** 63n)],
    ['bytes', { type: 'bytes', value: blob.toString('base64') }, blob],
  ];

  it.each(keyCases)(
    'computes the client digest of a key: %s, with and without a set',
    async (_, seed, value) => {
      for (const set of ['typed-digest', null]) {
        const written = key(set, value);
        await client.put(written, { by: 'client' });
        expect(await emulator.digestOf(set ?? '', seed)).toBe(hex(written));

        // A seeded record lands on the same digest, so the client finds it by the typed key.
        await emulator.put(NS, set ?? '', seed, { by: 'seed' });
        expect((await client.get(key(set, value))).bins).toEqual({ by: 'seed' });
      }
    },
  );

  it('stores seeded bins exactly as the client writes them', async () => {
    const boundaries = [
      0,
      127,
      128,
      255,
      256,
      65535,
      65536,
      2 ** 32 - 1,
      2 ** 32,
      -1,
      -32,
      -33,
      -128,
      -129,
      -32768,
      -32769,
      -(2 ** 31),
      -(2 ** 31) - 1,
    ];
    const strings = ['', 'z'.repeat(30), 'z'.repeat(31), 'z'.repeat(255), 'z'.repeat(70000)];
    const segments = { '1001': 1767225600, '7': 1767312000, '42': 0 };
    const wide = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`s${i}`, i * 1000]));
    const shared = {
      name: 'Ada',
      unicode: 'Zoë ✓ 名前',
      long: 'y'.repeat(300),
      visits: 42,
      zero: 0,
      negative: -7,
      pow: 2 ** 60,
      score: 2.5,
      tiny: -0.125,
      ints: boundaries,
      strings,
      counting: Array.from({ length: 20 }, (_, i) => i),
      mixed: ['a', 2.5, null, [1, ['deep']], { k: 'v' }],
      segments,
      wide,
      keys: { ü: 1, a: 2, Z: 3, '': 4 },
      nested: { tags: ['a', 'b'], history: [{ at: 1, seg: [5, 6] }], deep: { x: { y: [1, [2]] } } },
      emptyList: [],
      emptyMap: {},
    };
    const clientBins = {
      ...shared,
      big: 2n ** 60n + 1n,
      min: -(2n ** 63n),
      exact: new Aerospike.Double(3),
      listed: [new Aerospike.Double(1), 2n ** 62n, -(2n ** 40n)],
    };
    const seedBins: Record<string, SeedValue> = {
      ...shared,
      big: { int: '1152921504606846977' },
      min: { int: '-9223372036854775808' },
      exact: { double: 3 },
      listed: [{ double: 1 }, { int: '4611686018427387904' }, { int: '-1099511627776' }],
    };
    // The client reads an integer back as a number when it is safe, as a bigint otherwise.
    const expected = {
      ...clientBins,
      pow: 2n ** 60n,
      exact: 3,
      listed: [1, 2n ** 62n, -(2 ** 40)],
    };

    const fromClient = key('bins', 'from-client');
    await client.put(fromClient, clientBins);
    const seedKey: SeedKey = { type: 'string', value: 'seeded' };
    await emulator.put(NS, 'bins', seedKey, seedBins);

    const written = await client.get(key('bins', 'from-client'));
    const seeded = await client.get(key('bins', 'seeded'));
    expect(written.bins).toEqual(expected);
    expect(seeded.bins).toEqual(written.bins);
    expect(typeof seeded.bins.big).toBe('bigint');
    expect(typeof seeded.bins.visits).toBe('number');
    expect(seeded.bins.segments).toEqual(segments);

    // Byte for byte: same particle types, same msgpack (string prefixes, map order, int sizes).
    const rawClient = await emulator.rawRecord(NS, hex(fromClient));
    const rawSeed = await emulator.rawRecord(NS, await emulator.digestOf('bins', seedKey));
    expect(rawClient?.bins).toBeDefined();
    expect(rawSeed?.bins).toEqual(rawClient?.bins);
  });

  it('seeds many records in one call, with ttl and client.put merge semantics', async () => {
    await emulator.putMany(NS, [
      {
        set: 'many',
        key: { type: 'integer', value: '1' },
        bins: { segments: { '7': 1767312000 } },
      },
      { set: 'many', key: { type: 'integer', value: '2' }, bins: { segments: {} }, ttlSecs: 3600 },
      { set: 'many', key: { type: 'string', value: '3' }, bins: { name: 'three', n: 3 } },
    ]);
    const keys = [1, 2, '3', 3].map((k) => key('many', k));
    const results = await readAll(keys);
    expect(results.map((r) => r.status)).toEqual([OK, OK, OK, ERR_RECORD_NOT_FOUND]);
    expect(results.map((r) => r.record?.bins)).toEqual([
      { segments: { '7': 1767312000 } },
      { segments: {} },
      { name: 'three', n: 3 },
      undefined,
    ]);
    expect(results[0]?.record.ttl).toBe(-1);
    expect(results[1]?.record.ttl).toBeGreaterThan(3590);

    await emulator.put(NS, 'many', { type: 'string', value: '3' }, { name: null, extra: 'x' });
    const merged = await client.get(key('many', '3'));
    expect(merged.bins).toEqual({ n: 3, extra: 'x' });
    expect(merged.gen).toBe(2);
  });

  it('rejects seeds the client could not write, and writes none of the batch', async () => {
    const good = {
      set: 'bad-seed',
      key: { type: 'string', value: 'ok' } as SeedKey,
      bins: { v: 1 },
    };
    const attempts: [string, Promise<void>][] = [
      ['not a decimal', emulator.putMany(NS, [good, { ...good, bins: { v: { int: '1.5' } } }])],
      [
        'not an int64',
        emulator.putMany(NS, [
          good,
          { ...good, key: { type: 'integer', value: '9223372036854775808' } },
        ]),
      ],
      ['not an int64', emulator.put(NS, 'bad-seed', good.key, { v: 2 ** 63 })],
      ['over 15 bytes', emulator.put(NS, 'bad-seed', good.key, { 'sixteen-chars-xx': 1 })],
      ['namespace nowhere', emulator.put('nowhere', 'bad-seed', good.key, { v: 1 })],
    ];
    for (const [message, attempt] of attempts) await expect(attempt).rejects.toThrow(message);
    expect(await emulator.recordCount(NS, 'bad-seed')).toBe(0);
  });

  it('stores a key sent with policy key SEND and refuses a different key on the same digest', async () => {
    const sendKey = new Aerospike.WritePolicy({ ...quick, key: Aerospike.policy.key.SEND });
    const sent = key('sent', 9876543210);
    await client.put(sent, { v: 1 }, {}, sendKey);
    const stored = await emulator.rawRecord(NS, hex(sent));
    const int64 = Buffer.from('000000024cb016ea', 'hex');
    expect(stored?.key).toEqual({ type: 1, value: int64.toString('base64') });
    const notSent = key('sent', 'no-key');
    await client.put(notSent, { v: 2 });
    expect((await emulator.rawRecord(NS, hex(notSent)))?.key).toBeUndefined();

    const readWithKey = new Aerospike.ReadPolicy({ ...quick, key: Aerospike.policy.key.SEND });
    expect((await client.get(key('sent', 9876543210), readWithKey)).bins).toEqual({ v: 1 });
    // Only a hand-made request can send another key for the same digest: key mismatch (19).
    const read = (flat: Buffer) =>
      readMessage([
        [0, Buffer.from(NS)],
        [1, Buffer.from('sent')],
        [4, Buffer.from(hex(sent), 'hex')],
        [2, flat],
      ]);
    const same = Buffer.concat([Buffer.of(1), int64]);
    expect((await exchange(3, read(same))).body.readUInt8(5)).toBe(0);
    const other = Buffer.concat([Buffer.of(3), Buffer.from('9876543210')]);
    expect((await exchange(3, read(other))).body.readUInt8(5)).toBe(19);
  });
});
