import Aerospike, { type Client } from 'aerospike';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../shared/errors.js';
import {
  AerospikeProfileStore,
  type AerospikeStoreOptions,
} from '../../shared/profiles/aerospike-profile-store.js';
import { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import { decodeBins } from '../helpers/decode-bins.js';
import { freePort } from '../helpers/free-port.js';

const NOW = Math.floor(Date.now() / 1000);
const A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const B = '1234567890';

let emulator: AerospikeEmulator;
let seeder: Client;
let store: AerospikeProfileStore;

function options(port: number): AerospikeStoreOptions {
  return {
    hosts: [{ host: '127.0.0.1', port }],
    namespace: 'profiles',
    connectTimeoutMs: 1_000,
    socketTimeoutMs: 200,
    totalTimeoutMs: 400,
    maxRetries: 0,
  };
}

beforeAll(async () => {
  emulator = await AerospikeEmulator.start();
  seeder = await Aerospike.connect({
    hosts: [{ addr: emulator.host, port: emulator.port }],
    log: { level: Aerospike.log.OFF },
  });
  await seeder.put(new Aerospike.Key('profiles', '222222', A), {
    segments: [1001, 1002],
    country: 'FR',
  });
  await seeder.put(new Aerospike.Key('profiles', '444444', B), {
    segments: { '1001': NOW - 60, '1003': NOW + 3_600, '1004': 0 },
    score: 0.5,
    raw: Buffer.from('xy'),
  });
  store = new AerospikeProfileStore(options(emulator.port));
});

afterAll(async () => {
  await store.close();
  seeder.close(true);
  await emulator.close();
});

beforeEach(async () => {
  await emulator.setMode({ kind: 'normal' });
  await emulator.resetStats();
});

describe('AerospikeProfileStore on the real client', () => {
  it('reads every key in one batch round trip, absent where there is no record', async () => {
    const bins = await store.getMany(
      [
        { set: '222222', id: A, keyType: 'string' },
        { set: '444444', id: B, keyType: 'string' },
        { set: '111111', id: A, keyType: 'string' },
      ],
      { timeoutMs: 1_000 },
    );
    // Segments read as bytes come as a table of integer ids (see raw-segments.ts).
    expect(decodeBins(bins[0] ?? {}, 'segments', NOW)).toEqual({
      segmentIds: [1001, 1002],
      attributes: { country: 'FR' },
    });
    expect(bins[2]).toBeUndefined();
    expect(decodeBins(bins[1] ?? {}, 'segments', NOW)).toEqual({
      segmentIds: [1003, 1004],
      attributes: { score: 0.5, raw: 'eHk=' },
    });
    const stats = await emulator.stats();
    expect(stats).toMatchObject({ batchReads: 1, batchKeys: 3, reads: 0 });
  });

  it('finds a record written with an integer key only when asked with an integer key', async () => {
    const id = '9876543210';
    await seeder.put(new Aerospike.Key('profiles', '555555', 9_876_543_210), { country: 'PL' });
    const [asInteger, asString] = await store.getMany(
      [
        { set: '555555', id, keyType: 'integer' },
        { set: '555555', id, keyType: 'string' },
      ],
      { timeoutMs: 1_000 },
    );
    expect(asInteger).toEqual({ country: 'PL' });
    expect(asString).toBeUndefined();
  });

  it('reads integer keys beyond 2^53 exactly', async () => {
    const id = '9223372036854775807';
    await seeder.put(new Aerospike.Key('profiles', '555555', BigInt(id)), { country: 'CZ' });
    const [found, neighbour] = await store.getMany(
      [
        { set: '555555', id, keyType: 'integer' },
        { set: '555555', id: '9223372036854775806', keyType: 'integer' },
      ],
      { timeoutMs: 1_000 },
    );
    expect(found).toEqual({ country: 'CZ' });
    expect(neighbour).toBeUndefined();
  });

  it('answers a ping', async () => {
    await expect(store.ping({ timeoutMs: 500 })).resolves.toBeUndefined();
  });

  it.each([
    { kind: 'silent' as const },
    { kind: 'slow' as const, delayMs: 2_000 },
    { kind: 'drop' as const },
  ])('fails within its deadline when the server is $kind, then recovers', async (mode) => {
    await emulator.setMode(mode);
    const started = Date.now();
    const err = await store
      .getMany(
        [
          { set: '222222', id: A, keyType: 'string' },
          { set: '444444', id: B, keyType: 'string' },
        ],
        { timeoutMs: 300 },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(Date.now() - started).toBeLessThan(1_500);
    await emulator.setMode({ kind: 'normal' });
    const again = await store.getMany(
      [
        { set: '222222', id: A, keyType: 'string' },
        { set: '444444', id: B, keyType: 'string' },
      ],
      { timeoutMs: 1_000 },
    );
    expect(again[0]).toMatchObject({ country: 'FR' });
  });

  it('retries a failed connect on a later call, failing fast in between', async () => {
    const nobody = new AerospikeProfileStore(options(await freePort()));
    await expect(
      nobody.getMany([{ set: '222222', id: A, keyType: 'string' }], { timeoutMs: 500 }),
    ).rejects.toThrow(/connect failed/);
    const started = Date.now();
    await expect(
      nobody.getMany([{ set: '222222', id: A, keyType: 'string' }], { timeoutMs: 500 }),
    ).rejects.toThrow(/not connected; retrying shortly/);
    expect(Date.now() - started).toBeLessThan(50);
    await nobody.close();
  });
});
