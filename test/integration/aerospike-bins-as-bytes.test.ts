import Aerospike, { type AerospikeBins, type Client } from 'aerospike';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Logger, silentLogger } from '../../shared/logger.js';
import {
  AerospikeProfileStore,
  type AerospikeStoreOptions,
} from '../../shared/profiles/aerospike-profile-store.js';
import type { ProfileBins, ProfileKey } from '../../shared/profiles/profile-store.js';
import { SegmentTable } from '../../shared/profiles/segment-table.js';
import { AerospikeEmulator, type SeedRecord } from '../emulators/aerospike-emulator.js';
import { decodeBins } from '../helpers/decode-bins.js';

// One instant for every answer: expiries are relative to it, and both stores are read at it.
const NOW = Math.floor(Date.now() / 1000);
const PAST = NOW - 3_600;
const FUTURE = NOW + 3_600;
const NS = 'profiles';
const CALL = { timeoutMs: 5_000 };
const SMALL = 2 ** 30;

let emulator: AerospikeEmulator;
/** Writes records as the Node client writes them; the bytes stores read through it too. */
let client: Client;
/** The oracle: the C client decodes every list and map bin (the behaviour before bytes). */
let decoded: AerospikeProfileStore;

function options(port: number): AerospikeStoreOptions {
  return {
    hosts: [{ host: '127.0.0.1', port }],
    namespace: NS,
    connectTimeoutMs: 1_000,
    // Wider than aerospike-profile-store.test.ts: a timeout here would read as a difference.
    socketTimeoutMs: 2_000,
    totalTimeoutMs: 4_000,
    maxRetries: 0,
  };
}

/**
 * A store reading lists and maps as bytes, with counts of its own (the give-up rule counts per
 * store, so each case starts from a fresh one), on the shared client: no connect per case.
 */
function bytesStore(log: Logger = silentLogger): AerospikeProfileStore {
  return new AerospikeProfileStore(
    { ...options(emulator.port), listsAndMaps: 'bytes' },
    log,
    async () => client,
  );
}

const keyOf = (set: string, id: string): ProfileKey => ({ set, id, keyType: 'string' });

/** What the renderer takes from each record ('absent': no record). */
function rendered(bins: readonly (ProfileBins | undefined)[]) {
  return bins.map((b) => {
    if (b === undefined) return 'absent';
    const { attributes, segmentIds } = decodeBins(b, 'segments', NOW);
    // A SegmentTable hands ids on as numbers, a decoded bin as strings: the renderer looks both
    // up alike and writes an unknown one as String(id), so they are compared as text.
    return { attributes, segmentIds: segmentIds.map(String) };
  });
}

/** The answer to a request, or the error it failed with. */
async function outcome(store: AerospikeProfileStore, keys: ProfileKey[]) {
  try {
    return { answers: rendered(await store.getMany(keys, CALL)) };
  } catch (err) {
    return { error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
}

const isTable = (bins: ProfileBins | undefined) => bins?.segments instanceof SegmentTable;

beforeAll(async () => {
  emulator = await AerospikeEmulator.start();
  client = await Aerospike.connect({
    hosts: [{ addr: emulator.host, port: emulator.port }],
    log: { level: Aerospike.log.OFF },
  });
  decoded = new AerospikeProfileStore({ ...options(emulator.port), listsAndMaps: 'decoded' });
});

afterAll(async () => {
  await decoded?.close();
  client?.close(true);
  await emulator?.close();
});

// --- a. Records as the Node client writes them ------------------------------------------------

/** Segment ids as map keys (JS object keys are strings): every kind V8 orders differently. */
const idKey = fc.oneof(
  { weight: 2, arbitrary: fc.nat(5_000).map(String) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        SMALL - 1,
        SMALL,
        2 ** 31 - 1,
        2 ** 31,
        2 ** 32 - 2,
        2 ** 32 - 1,
        2 ** 32,
        2 ** 53,
      )
      .map(String),
  },
  fc.integer({ min: -5_000, max: -1 }).map(String),
  fc.constantFrom('007', '-0', '00', '+1', '1e3', ' 1', '1.0', '-1073741824'),
  fc.constantFrom('abc', '', 'x1', '__proto__', 'constructor'),
);
/** Expiries of the common shape: 0 (never), past and future epoch seconds, a float. */
const commonExpiry = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: 86_400 }).map((s) => NOW - s),
  fc.integer({ min: 1, max: 86_400 }).map((s) => NOW + s),
  fc.constantFrom(NOW, NOW + 0.5, NOW - 0.5, -1),
);
/** Any expiry, and what else a value may be. */
const expiry = fc.oneof(
  { weight: 4, arbitrary: commonExpiry },
  fc.constantFrom(2 ** 31, 2 ** 53, 1.5, Number.NaN, null),
  fc.double({ min: 0, max: 2 * NOW, noNaN: true }).filter((x) => !Number.isInteger(x)),
  fc.bigInt({ min: 2n ** 53n + 1n, max: 2n ** 63n - 1n }),
  fc.bigInt({ min: -(2n ** 63n), max: -(2n ** 53n) - 1n }),
);
/** Segment ids as integers (list items, Map keys). */
const idInt = fc.oneof(
  { weight: 3, arbitrary: fc.nat(5_000) },
  fc.integer({ min: -5_000, max: -1 }),
  fc.constantFrom(SMALL - 1, SMALL, -SMALL, -SMALL - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 40),
);
const listItem = fc.oneof(
  { weight: 3, arbitrary: idInt },
  { weight: 2, arbitrary: idKey },
  fc.constantFrom(1.5, null),
  fc.bigInt({ min: 2n ** 53n + 1n, max: 2n ** 63n - 1n }),
);
const commonMap = fc.dictionary(fc.nat(5_000).map(String), commonExpiry, { maxKeys: 25 });
const commonList = fc.array(fc.nat(5_000), { maxLength: 25 });
/** Where an odd entry goes into a list. */
const withItem = ([items, item, at]: [unknown[], unknown, number]) => {
  const copy = [...items];
  copy.splice(at % (items.length + 1), 0, item);
  return copy;
};
const segments = fc.oneof(
  { weight: 3, arbitrary: commonMap },
  // The common shape but for one entry.
  {
    weight: 3,
    arbitrary: fc.tuple(commonMap, idKey, expiry).map(([map, id, at]) => ({ ...map, [id]: at })),
  },
  fc.dictionary(idKey, expiry, { maxKeys: 25 }),
  commonList,
  commonList.map((ids) => ids.map(String)),
  { weight: 2, arbitrary: fc.tuple(commonList, listItem, fc.nat()).map(withItem) },
  fc.array(listItem, { maxLength: 10 }),
  // A Map keeps integer keys as integers (1014 and "1014" both, at times), inserted in any order.
  {
    weight: 2,
    arbitrary: fc
      .uniqueArray(fc.tuple(fc.oneof(fc.nat(30), fc.nat(30).map(String)), commonExpiry), {
        selector: ([id]) => id,
        maxLength: 20,
      })
      .map((entries) => new Map<unknown, unknown>(entries)),
  },
  fc
    .uniqueArray(fc.tuple(fc.oneof(idInt, idKey), expiry), {
      selector: ([id]) => id,
      maxLength: 20,
    })
    .map((entries) => new Map<unknown, unknown>(entries)),
  fc.constant(undefined),
);
/** Blobs: random bytes, and bytes that read as a list or map (the binding cannot tell). */
const blob = fc
  .oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 12 }) },
    fc.constantFrom([0x90], [0x80], [0x92, 0x01, 0x02], [0x81, 0xa2, 0x03, 0x61, 0x01], [0x91]),
  )
  .map((bytes) => Buffer.from(bytes));
const scalar = fc.oneof(fc.integer(), fc.string({ maxLength: 6 }), fc.double(), fc.constant(null));
/** Absent more often than not: a list or map attribute has the record read again. */
const sometimes = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, arb);
const attributes = fc
  .record({
    country: fc.constantFrom('FR', 'DE', ''),
    age: sometimes(fc.integer({ min: -1, max: 120 })),
    score: sometimes(fc.double()),
    raw: sometimes(blob),
    tags: sometimes(fc.array(scalar, { maxLength: 4 })),
    prefs: sometimes(fc.dictionary(fc.string({ maxLength: 4 }), scalar, { maxKeys: 3 })),
  })
  .map((bins) => Object.fromEntries(Object.entries(bins).filter(([, v]) => v !== undefined)));
const record = fc.tuple(segments, attributes).map(([segs, attrs]) => ({
  ...attrs,
  ...(segs === undefined ? {} : { segments: segs }),
}));

describe('AerospikeProfileStore, lists and maps read as bytes', () => {
  it('answers every record written by the Node client as the client decoding it would', async () => {
    let run = 0;
    let tables = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 6 }), async (records) => {
        run++;
        const keys = records.map((_, i) => keyOf('777777', `p${run}-${i}`));
        await Promise.all(
          records.map((bins, i) =>
            client.put(new Aerospike.Key(NS, '777777', (keys[i] as ProfileKey).id), bins),
          ),
        );
        // One absent key too: it is counted, and answered, as any other.
        keys.push(keyOf('777777', `absent-${run}`));
        const asBytes = await bytesStore().getMany(keys, CALL);
        tables += asBytes.filter(isTable).length;
        expect(rendered(asBytes)).toStrictEqual(rendered(await decoded.getMany(keys, CALL)));
      }),
      { numRuns: 80 },
    );
    // Not vacuous: common segments bins were taken as bytes.
    expect(tables).toBeGreaterThan(0);
  });
});

// --- b. Msgpack forms the Node client never writes ---------------------------------------------

type Bytes = number[];
/** `n` as `size` big-endian bytes (two's complement). */
const be = (n: number | bigint, size: number): Bytes =>
  Array.from({ length: size }, (_, i) =>
    Number((BigInt.asUintN(size * 8, BigInt(n)) >> BigInt(8 * (size - 1 - i))) & 0xffn),
  );
const nil: Bytes = [0xc0];
const u8 = (n: number): Bytes => [0xcc, ...be(n, 1)];
const u16 = (n: number): Bytes => [0xcd, ...be(n, 2)];
const u32 = (n: number): Bytes => [0xce, ...be(n, 4)];
const u64 = (n: bigint): Bytes => [0xcf, ...be(n, 8)];
const i8 = (n: number): Bytes => [0xd0, ...be(n, 1)];
const i16 = (n: number): Bytes => [0xd1, ...be(n, 2)];
const i32 = (n: number): Bytes => [0xd2, ...be(n, 4)];
const i64 = (n: bigint): Bytes => [0xd3, ...be(n, 8)];
/** An integer in its shortest form, as the C client packs it (pack_int64). */
function int(n: number | bigint): Bytes {
  const v = BigInt(n);
  if (v >= 0n) {
    if (v < 128n) return [Number(v)];
    if (v < 256n) return u8(Number(v));
    if (v < 65_536n) return u16(Number(v));
    return v < 2n ** 32n ? u32(Number(v)) : u64(v);
  }
  if (v >= -32n) return be(v, 1);
  if (v >= -128n) return i8(Number(v));
  if (v >= -32_768n) return i16(Number(v));
  return v >= -(2n ** 31n) ? i32(Number(v)) : i64(v);
}
const f32 = (x: number): Bytes => {
  const b = Buffer.alloc(4);
  b.writeFloatBE(x);
  return [0xca, ...b];
};
const f64 = (x: number): Bytes => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return [0xcb, ...b];
};
/**
 * A string inside a list or map: particle type byte (3 string, 4 blob) then the text, under the
 * header the writer chose (fixstr, str8/bin8, str16/bin16).
 */
function str(
  text: string,
  head: 'fix' | 'str8' | 'bin8' | 'str16' | 'bin16' = 'fix',
  particle = 3,
): Bytes {
  const body = [particle, ...Buffer.from(text, 'utf8')];
  const n = body.length;
  const header = {
    fix: [0xa0 | n],
    str8: [0xd9, n],
    bin8: [0xc4, n],
    str16: [0xda, ...be(n, 2)],
    bin16: [0xc5, ...be(n, 2)],
  }[head];
  return [...header, ...body];
}
const mapHead = (n: number): Bytes => (n < 16 ? [0x80 | n] : [0xde, ...be(n, 2)]);
const listHead = (n: number): Bytes => (n < 16 ? [0x90 | n] : [0xdc, ...be(n, 2)]);
/** A list's or map's flags as the C client packs them: an ext of no content, its type the flags. */
const flags = (f: number): Bytes => [0xc7, 0x00, f];
const MAP = 19;
const LIST = 20;
const BLOB = 4;
const STRING = 3;

interface Particle {
  readonly name: string;
  readonly particle: number;
  readonly bytes: Bytes;
}
const map = (name: string, count: number, ...parts: Bytes[]): Particle => ({
  name: `map: ${name}`,
  particle: MAP,
  bytes: [...mapHead(count), ...parts.flat()],
});
const list = (name: string, count: number, ...parts: Bytes[]): Particle => ({
  name: `list: ${name}`,
  particle: LIST,
  bytes: [...listHead(count), ...parts.flat()],
});
const nested = (depth: number): Bytes => [...Array<number>(depth).fill(0x91), 0x01];
const twenty = Array.from({ length: 20 }, (_, i) => [
  ...int(1_000 + i),
  ...int(i % 2 ? 0 : FUTURE),
]);

const PARTICLES: readonly Particle[] = [
  // Maps the common shape, in every form.
  map('int keys in order', 2, int(1001), int(FUTURE), int(1002), int(0)),
  map('int keys out of order', 3, int(1003), int(0), int(1001), int(PAST), int(1002), int(FUTURE)),
  map('string keys as the Node client writes them', 2, str('1002'), int(0), str('17'), int(PAST)),
  map('int and string keys mixed', 3, int(9), int(0), str('10'), int(FUTURE), int(2), int(0)),
  map('str8 keys', 2, str('1001', 'str8'), int(0), str('17', 'str8'), int(FUTURE)),
  map('bin8 keys', 2, str('1001', 'bin8'), int(0), str('17', 'bin8'), int(FUTURE)),
  map('str16 and bin16 keys', 2, str('5', 'str16'), int(0), str('6', 'bin16'), int(0)),
  map('key 0 and "0"', 1, str('0'), int(0)),
  map('ids just under 2^30', 2, int(SMALL - 1), int(0), str(String(SMALL - 2)), int(0)),
  map('float32 expiries', 2, int(1), f32(FUTURE), int(2), f32(PAST)),
  map('float64 expiries', 3, int(1), f64(NOW + 0.5), int(2), f64(NOW - 0.5), int(3), f64(NOW)),
  map('NaN and infinite expiries', 2, int(1), f64(Number.NaN), int(2), f64(-Infinity)),
  map(
    'non-minimal integer forms',
    4,
    u8(1),
    u16(FUTURE % 65_536),
    u16(2),
    u32(0),
    u32(3),
    u64(BigInt(PAST)),
    i8(4),
    i64(0n),
  ),
  map('signed forms of small keys', 3, i8(5), int(0), i16(6), i32(0), i32(7), i16(-1)),
  map('negative expiries', 2, int(1), int(-1), int(2), i64(-(2n ** 40n))),
  map('uint64 expiry above 2^63 (read as a negative int64)', 1, int(1), u64(2n ** 64n - 1n)),
  map('uint64 expiry above 2^63, large', 1, int(1), u64(2n ** 63n + 5n)),
  map('int64 expiry beyond 2^53', 2, int(1), i64(2n ** 60n), int(2), u64(2n ** 53n + 1n)),
  map('16 bit header', 20, ...twenty),
  {
    name: 'map: 32 bit header',
    particle: MAP,
    bytes: [0xdf, ...be(2, 4), ...int(1), ...int(0), ...int(2), ...int(PAST)],
  },
  map('empty', 0),
  // Flags: one leading ext, then a value.
  map('key-ordered flags', 3, flags(0x01), nil, int(1002), int(0), int(1001), int(FUTURE)),
  map('flags with content (fixext1)', 2, [0xd4, 0x01, 0xaa], nil, int(1001), int(0)),
  map('flags with content (fixext2)', 2, [0xd5, 0x01, 0xaa, 0xbb], nil, int(1001), int(0)),
  map('flags with content (ext8)', 2, [0xc7, 0x02, 0x01, 0xaa, 0xbb], nil, int(1001), int(0)),
  map('flags with content (ext16)', 2, [0xc8, 0x00, 0x01, 0x01, 0xaa], nil, int(1001), int(0)),
  map('flags with content (ext32)', 2, [0xc9, ...be(1, 4), 0x01, 0xaa], nil, int(1001), int(0)),
  map('flags with content (fixext16)', 2, [0xd8, 0x01, ...be(0, 16)], nil, int(1001), int(0)),
  map('flags followed by a value other than nil', 2, flags(0x01), int(5), int(1001), int(0)),
  map('flags followed by a list', 2, flags(0x01), listHead(1), int(5), int(1001), int(0)),
  map('only the flags', 1, flags(0x01), nil),
  map('preserve-order flag', 3, flags(0x08), nil, int(1002), int(0), int(1001), int(FUTURE)),
  map('preserve-order and key-ordered flags', 2, flags(0x09), nil, int(1002), int(0)),
  map('an ext after the first element', 2, int(1001), int(0), [0xd4, 0x01, 0x00], nil),
  map('an ext as a value', 1, int(1001), [0xd4, 0x01, 0x00]),
  map('two flags exts', 3, flags(0x01), nil, flags(0x01), nil, int(1), int(0)),
  // Keys and values not of the common shape.
  map('int 1014 and string "1014"', 2, int(1014), int(0), str('1014'), int(PAST)),
  map('string "1014" then int 1014', 2, str('1014'), int(PAST), int(1014), int(0)),
  map('an int key twice', 2, int(5), int(0), int(5), int(PAST)),
  map('an int key twice, far apart', 3, int(5), int(PAST), int(6), int(0), int(5), int(0)),
  map('negative keys', 3, int(-5), int(0), int(3), int(0), str('-7'), int(0)),
  map('key 2^30', 2, int(SMALL), int(0), int(1), int(0)),
  map(
    'keys 2^31, 2^32 - 2 and 2^32 - 1',
    4,
    int(2 ** 32 - 1),
    int(0),
    int(2 ** 32 - 2),
    int(0),
    int(2 ** 31),
    int(0),
    int(7),
    int(0),
  ),
  map('key beyond 2^53', 2, i64(2n ** 60n), int(0), int(1), int(0)),
  map('key "007"', 2, str('007'), int(0), int(8), int(0)),
  map('key "-0"', 1, str('-0'), int(0)),
  map(
    'keys "+1", " 2", "3.0", "1e3"',
    4,
    str('+1'),
    int(0),
    str(' 2'),
    int(0),
    str('3.0'),
    int(0),
    str('1e3'),
    int(0),
  ),
  map('key "1001" followed by NUL', 2, str('1001\u0000'), int(0), int(5), int(0)),
  map('key of the particle byte alone', 1, str(''), int(0)),
  map('key of no bytes at all', 1, [0xa0], int(0)),
  map('key as a blob (particle 4)', 2, str('1001', 'fix', BLOB), int(0), int(5), int(0)),
  map('key as a geojson (particle 23)', 1, str('5', 'fix', 23), int(0)),
  map('float keys', 2, f64(2), int(0), f64(1.5), int(0)),
  map('nil, true and false keys', 3, nil, int(0), [0xc3], int(0), [0xc2], int(0)),
  map('a list as a key', 1, listHead(1), int(1), int(0)),
  map('a nested list as a value', 2, int(1001), listHead(2), int(1), int(2), int(1002), int(0)),
  map('a map as a value', 1, int(1001), mapHead(1), int(1), int(2)),
  map('a string as a value', 1, int(1001), str('soon')),
  map('nil and booleans as values', 3, int(1), nil, int(2), [0xc3], int(3), [0xc2]),
  map('values nested 70 deep', 1, int(1001), nested(70)),
  map('values nested 63 deep', 1, int(1001), nested(63)),
  // Malformed, as no server stores them (it checks a list or map on write), but with an answer
  // from the client. Left out: bins cut short (fewer entries than the count, a value cut, a huge
  // count, no bytes at all): the C client reads past the bin's end (values made of the reply's
  // next bytes) or corrupts its heap (SIGABRT), so there is no answer to compare.
  map('a trailing byte', 1, int(1001), int(0), nil),
  map('a trailing map', 1, int(1001), int(0), mapHead(1), int(1002), int(0)),
  {
    name: 'map: bytes that are a list',
    particle: MAP,
    bytes: [...listHead(2), ...int(1), ...int(2)],
  },
  map('a byte that is no msgpack (0xc1) as a value', 2, int(1001), int(0), int(1002), [0xc1]),
  // Left out: a map or list bin whose bytes are a scalar (the client answers the scalar, which a
  // Buffer cannot be told from); no server stores one.
  // Lists.
  list('ints', 3, int(1001), int(1002), int(7)),
  list('strings', 2, str('1001'), str('7', 'str8')),
  list('ints and strings mixed', 3, int(3), str('1'), int(2)),
  list('negative ids', 3, int(-5), str('-7'), i16(-300)),
  list(
    'ids at the edges of 2^30',
    4,
    int(SMALL - 1),
    int(-SMALL),
    str(String(SMALL - 1)),
    str(String(-SMALL)),
  ),
  list('ids beyond 2^30', 3, int(SMALL), int(-SMALL - 1), str(String(SMALL))),
  list('ids beyond 2^32 and 2^53', 3, int(2 ** 40), u64(2n ** 63n + 1n), i64(2n ** 60n)),
  list('"007", "-0", "00"', 3, str('007'), str('-0'), str('00')),
  list('"" and a blob id', 2, str(''), str('5', 'fix', BLOB)),
  list('floats', 3, f64(1), f64(1.5), f32(2)),
  list('nil, booleans, nested', 4, nil, [0xc3], listHead(1), int(1), mapHead(1), int(1), int(2)),
  list('ordered flags', 3, flags(0x01), int(3), int(1)),
  list('flags with content', 2, [0xd4, 0x01, 0xaa], int(3)),
  list('an ext after the first element', 2, int(3), [0xd4, 0x01, 0x00]),
  list('a byte that is no msgpack (0xc1)', 2, int(3), [0xc1]),
  list('16 bit header', 20, ...Array.from({ length: 20 }, (_, i) => int(i))),
  { name: 'list: 32 bit header', particle: LIST, bytes: [0xdd, ...be(2, 4), ...int(5), ...int(6)] },
  list('empty', 0),
  list('nested 70 deep', 1, nested(69)),
  list('a trailing byte', 1, int(1), nil),
  {
    name: 'list: bytes that are a map',
    particle: LIST,
    bytes: [...mapHead(1), ...int(1), ...int(0)],
  },
  // Blobs and strings whose bytes may read as a list or map.
  {
    name: 'blob: bytes of a common map',
    particle: BLOB,
    bytes: [...mapHead(1), ...int(1001), ...int(0)],
  },
  {
    name: 'blob: bytes of a common list',
    particle: BLOB,
    bytes: [...listHead(2), ...int(5), ...int(6)],
  },
  {
    name: 'blob: bytes of a map with a list key',
    particle: BLOB,
    bytes: [...mapHead(1), ...listHead(0), ...int(0)],
  },
  {
    name: 'blob: bytes of a map, one byte more',
    particle: BLOB,
    bytes: [...mapHead(1), ...int(1), ...int(0), 0xc0],
  },
  { name: 'blob: other bytes', particle: BLOB, bytes: [0x00, 0xff, 0x10] },
  { name: 'blob: bytes of a list cut short', particle: BLOB, bytes: [...listHead(3), ...int(1)] },
  {
    name: 'Java blob (particle 7): bytes of a common map',
    particle: 7,
    bytes: [...mapHead(1), ...int(5), ...int(0)],
  },
  {
    name: 'HyperLogLog (particle 18): bytes of a common map',
    particle: 18,
    bytes: [...mapHead(1), ...int(5), ...int(0)],
  },
  { name: 'blob: empty', particle: BLOB, bytes: [] },
  { name: 'string: text', particle: STRING, bytes: [...Buffer.from('1001')] },
  {
    name: 'string: bytes of a map',
    particle: STRING,
    bytes: [...mapHead(1), ...int(1), ...int(0)],
  },
];

/** Blobs whose bytes a segments bin read as bytes takes for segments (see below). */
const BLOB_SEGMENTS = new Set([
  'blob: bytes of a common map',
  'blob: bytes of a common list',
  'Java blob (particle 7): bytes of a common map',
  'HyperLogLog (particle 18): bytes of a common map',
]);
/** it.each rows: the case's name in full (`$name` is cut at 40 characters). */
const rows = (particles: readonly Particle[]) => particles.map((p) => [p.name, p] as const);

describe('AerospikeProfileStore, lists and maps read as bytes, msgpack of other writers', () => {
  const seeded = (kind: string, p: Particle) => `${kind}: ${p.name}`;

  beforeAll(async () => {
    const records = PARTICLES.flatMap((p): SeedRecord[] => {
      const value = { particle: p.particle, bytes: Buffer.from(p.bytes).toString('base64') };
      return [
        {
          set: '888888',
          key: { type: 'string', value: seeded('segments', p) },
          bins: { segments: value, country: 'FR' },
        },
        {
          set: '888888',
          key: { type: 'string', value: seeded('attribute', p) },
          bins: { segments: { '1001': FUTURE, '1002': 0, '1003': PAST }, attr: value },
        },
      ];
    });
    await emulator.putMany(NS, records);
  });

  it.each(rows(PARTICLES.filter((p) => !BLOB_SEGMENTS.has(p.name))))(
    'answers %s as the segments bin as the client decoding it',
    async (_, p) => {
      const keys = [keyOf('888888', seeded('segments', p))];
      expect(await outcome(bytesStore(), keys)).toStrictEqual(await outcome(decoded, keys));
    },
  );

  // The one documented difference (raw-segments.ts): the binding hands a Buffer on without its
  // particle type, so a segments bin stored as a blob whose bytes spell a common map or list is
  // taken as those segments; decoded, the client hands on the Buffer, which has no segments.
  it.each(rows(PARTICLES.filter((p) => BLOB_SEGMENTS.has(p.name))))(
    'takes %s in the segments bin as the segments it spells (documented)',
    async (_, p) => {
      const keys = [keyOf('888888', seeded('segments', p))];
      const asBytes = await outcome(bytesStore(), keys);
      const asDecoded = await outcome(decoded, keys);
      expect(asDecoded).toStrictEqual({
        answers: [{ attributes: { country: 'FR' }, segmentIds: [] }],
      });
      const [answer] = asBytes.answers ?? [];
      expect(answer).toMatchObject({ attributes: { country: 'FR' } });
      expect((answer as { segmentIds: string[] }).segmentIds.length).toBeGreaterThan(0);
    },
  );

  it.each(rows(PARTICLES))(
    'answers %s as an attribute bin as the client decoding it',
    async (_, p) => {
      const keys = [keyOf('888888', seeded('attribute', p))];
      expect(await outcome(bytesStore(), keys)).toStrictEqual(await outcome(decoded, keys));
    },
  );
});

// --- c, d. Round trips --------------------------------------------------------------------------

/** A common segments map as the Node client writes it (string keys). */
const COMMON = { '1001': FUTURE, '1002': 0, '1003': PAST };

/** Batch reads and keys the emulator served for `read`. */
async function roundTrips<T>(read: () => Promise<T>) {
  await emulator.resetStats();
  const result = await read();
  const { batchReads, batchKeys, reads } = await emulator.stats();
  return { result, trips: { batchReads, batchKeys, reads } };
}

describe('AerospikeProfileStore, lists and maps read as bytes, round trips', () => {
  const set = '999999';
  const put = (id: string, bins: AerospikeBins) => client.put(new Aerospike.Key(NS, set, id), bins);
  /** Records with a list or map attribute, which the store reads again decoded. */
  const withMaps = Array.from({ length: 16 }, (_, i) => keyOf(set, `maps-${i}`));

  beforeAll(async () => {
    await put('scalars', {
      segments: COMMON,
      country: 'FR',
      age: 42,
      score: 0.5,
      raw: Buffer.from('xy'),
    });
    await put('list-segments', { segments: [1001, 1002], country: 'DE' });
    await put('no-segments', { country: 'IT' });
    await put('tags', { segments: COMMON, tags: ['a', 'b'] });
    await put('prefs', { segments: COMMON, prefs: { lang: 'fr' } });
    await Promise.all(
      withMaps.map((key, i) => put(key.id, { segments: COMMON, prefs: { rank: i } })),
    );
  });

  it('costs one batch read for records of scalars, blobs and common segments', async () => {
    const keys = ['scalars', 'list-segments', 'no-segments', 'absent'].map((id) => keyOf(set, id));
    const store = bytesStore();
    const { result, trips } = await roundTrips(() => store.getMany(keys, CALL));
    expect(trips).toEqual({ batchReads: 1, batchKeys: 4, reads: 0 });
    expect(rendered(result)).toStrictEqual(rendered(await decoded.getMany(keys, CALL)));
    expect(rendered(result)[0]).toStrictEqual({
      segmentIds: ['1001', '1002'],
      attributes: { country: 'FR', age: 42, score: 0.5, raw: 'eHk=' },
    });
    // Read as bytes indeed: the segments bins became tables.
    expect(result.slice(0, 2).every(isTable)).toBe(true);
  });

  it('reads a record with a list or map attribute again, answering as decoded', async () => {
    const keys = ['scalars', 'tags', 'prefs'].map((id) => keyOf(set, id));
    const store = bytesStore();
    const { result, trips } = await roundTrips(() => store.getMany(keys, CALL));
    // The second batch holds only the two records with a list or map.
    expect(trips).toEqual({ batchReads: 2, batchKeys: 3 + 2, reads: 0 });
    expect(rendered(result)).toStrictEqual(rendered(await decoded.getMany(keys, CALL)));
    expect(rendered(result).slice(1)).toStrictEqual([
      { segmentIds: ['1001', '1002'], attributes: { tags: ['a', 'b'] } },
      { segmentIds: ['1001', '1002'], attributes: { prefs: { lang: 'fr' } } },
    ]);
  });

  it('reads decoded for good once at least 16 records, and more than 1 in 100, were read again', async () => {
    const lines: string[] = [];
    const store = bytesStore(createLogger({ sink: (line) => lines.push(line) }));
    const expected = rendered(await decoded.getMany(withMaps, CALL));
    const fifteen = withMaps.slice(0, 15);
    // 15 records read again: fewer than 16, so still read as bytes.
    let read = await roundTrips(() => store.getMany(fifteen, CALL));
    expect(read.trips).toEqual({ batchReads: 2, batchKeys: 30, reads: 0 });
    expect(rendered(read.result)).toStrictEqual(expected.slice(0, 15));
    // 30 of 30: from the next call on, one batch read decoded.
    read = await roundTrips(() => store.getMany(fifteen, CALL));
    expect(read.trips).toEqual({ batchReads: 2, batchKeys: 30, reads: 0 });
    for (let i = 0; i < 2; i++) {
      read = await roundTrips(() => store.getMany(withMaps, CALL));
      expect(read.trips).toEqual({ batchReads: 1, batchKeys: 16, reads: 0 });
      expect(rendered(read.result)).toStrictEqual(expected);
    }
    const common = await store.getMany([keyOf(set, 'scalars')], CALL);
    expect(common.some(isTable)).toBe(false);
    const told = lines.filter((line) => line.includes('read decoded by the client from now on'));
    expect(told).toHaveLength(1);
    expect(JSON.parse(told[0] as string)).toMatchObject({ severity: 'INFO', readAgain: 30 });
  });

  it('keeps reading as bytes while at most 1 in 100 records is read again', async () => {
    // 1,600 records of the common shape, seeded at once.
    const many: SeedRecord[] = Array.from({ length: 1_600 }, (_, i) => ({
      set,
      key: { type: 'string', value: `common-${i}` },
      bins: { segments: COMMON, country: 'FR' },
    }));
    await emulator.putMany(NS, many);
    const store = bytesStore();
    await store.getMany(
      many.map((r) => keyOf(set, r.key.value)),
      CALL,
    );
    // 16 of 1,616 read again (1%), then 32 of 1,632 (2%): the third call reads decoded.
    const costs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const read = await roundTrips(() => store.getMany(withMaps, CALL));
      costs.push(read.trips.batchReads);
    }
    expect(costs).toEqual([2, 2, 1]);
  });
});
