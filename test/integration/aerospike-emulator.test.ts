import { once } from 'node:events';
import { connect } from 'node:net';
import Aerospike, { type AerospikeError, type BatchResult, type Client } from 'aerospike';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AerospikeEmulator } from '../emulators/aerospike-emulator.js';

const NS = 'profiles';
const TOTAL_TIMEOUT_MS = 500;
// Short, single-attempt policies so that every failure below surfaces well inside the test.
const quick = { socketTimeout: 200, totalTimeout: TOTAL_TIMEOUT_MS, maxRetries: 0 };

let emulator: AerospikeEmulator;
let client: Client;

function key(set: string | null, id: string, ns = NS): Aerospike.Key {
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
