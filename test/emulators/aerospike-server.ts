// Runs as a worker thread loaded by plain Node: keep to erasable TypeScript and node: imports only.
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { inflateSync } from 'node:zlib';

/**
 * How the server treats traffic: answer; ignore everything; apply data commands at once but
 * reply only after delayMs (info is answered at once); hang up on any data command; or refuse
 * every data command with a result code, as a real server refuses a command before running it
 * (81 role violation for a user without read privilege, 18 device overload...): one message with
 * the code, flagged LAST so that it also ends a batch.
 */
export type AerospikeMode =
  | { kind: 'normal' }
  | { kind: 'silent' }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'drop' }
  | { kind: 'refuse'; result: number };

/** Counters of handled traffic; commands ignored or dropped by the mode are not counted. */
export interface AerospikeStats {
  info: number;
  reads: number;
  batchReads: number;
  batchKeys: number;
  writes: number;
  deletes: number;
  connections: number;
}

/**
 * A record key as the client types it. The type is part of the digest, so the integer key
 * 9876543210 and the string key "9876543210" address different records.
 */
export type SeedKey =
  | { type: 'string'; value: string }
  | { type: 'integer'; value: string /* int64, decimal */ }
  | { type: 'bytes'; value: string /* base64 */ };

/**
 * A bin value, stored as the real client encodes the matching JS value: an integral number is an
 * int64 and any other number a double; an object whose only property is `int` (int64, decimal) or
 * `double` (a number) is that number; at the top level, an object of exactly `particle` (a
 * particle type) and `bytes` is a bin of those bytes as stored, as another client may have
 * written it (msgpack lists and maps of forms the Node client never writes); any other object is a
 * map. A top-level null means no bin
 * (it deletes the bin, as in client.put); inside a list or map it is nil.
 */
export type SeedValue =
  | string
  | number
  | { int: string }
  | { double: number }
  | { particle: number; bytes: string /* base64 */ }
  | null
  | SeedValue[]
  | { [key: string]: SeedValue };

/** One record to seed. The set '' means no set; ttlSecs absent means the namespace default. */
export interface SeedRecord {
  set: string;
  key: SeedKey;
  bins: Record<string, SeedValue>;
  ttlSecs?: number;
}

/** A particle as stored: its type byte and its bytes (base64), exactly as on the wire. */
export interface RawParticle {
  type: number;
  value: string;
}

/** A stored record as bytes, for tests that compare encodings; key only if one was sent. */
export interface RawRecord {
  set: string;
  generation: number;
  key: RawParticle | undefined;
  bins: Record<string, RawParticle>;
}

/** The cluster as its nodes see it: who is in, and the partition map they advertise. */
export interface ClusterView {
  /** Per node: its name, port, whether it runs, and whether the others count it in. */
  nodes: { name: string; port: number; running: boolean; member: boolean }[];
  peersGeneration: number;
  partitionGeneration: number;
}

/** A request from the controller thread to the worker; `node` (default 0) picks a node. */
export type ControlRequest =
  | { id: number; op: 'setMode'; mode: AerospikeMode; node?: number }
  | { id: number; op: 'stats' | 'resetStats'; node?: number }
  | { id: number; op: 'close' | 'clusterView' }
  | { id: number; op: 'stopNode'; node: number; graceful: boolean }
  | { id: number; op: 'startNode' | 'isolateNode' | 'healNode'; node: number }
  | { id: number; op: 'recordCount'; namespace: string; set?: string }
  | { id: number; op: 'seed'; namespace: string; records: SeedRecord[] }
  | { id: number; op: 'digestOf'; set: string; key: SeedKey }
  | { id: number; op: 'rawRecord'; namespace: string; digest: string };

/** A worker message: the nodes' listening ports once, then one reply per control request. */
export type ControlReply =
  | { kind: 'ready'; ports: number[] }
  | { kind: 'reply'; id: number; value: unknown }
  | { kind: 'failed'; id: number; message: string };

const MAX_BODY = 128 * 1024 * 1024;
const MAX_REPLY_PROTO = 128 * 1024;
const BUILD = '8.0.0.0'; // >= 6.0 makes the client use the batch row format parsed below.
const CITRUSLEAF_EPOCH = 1262304000;
const N_PARTITIONS = 4096;

// Wire constants, names as in the C client (as_proto.h, as_command.h, aerospike_batch.c).
const INFO1 = { GET_ALL: 0x02, BATCH_INDEX: 0x08, NOBINDATA: 0x20 } as const;
const INFO2 = { WRITE: 0x01, DELETE: 0x02, GEN: 0x04, GEN_GT: 0x08, CREATE_ONLY: 0x20 } as const;
const INFO2_RESPOND_ALL_OPS = 0x80;
const INFO3 = {
  LAST: 0x01,
  UPDATE_ONLY: 0x08,
  CREATE_OR_REPLACE: 0x10,
  REPLACE_ONLY: 0x20,
} as const;
const FIELD = { NAMESPACE: 0, SET: 1, KEY: 2, DIGEST: 4, BATCH_INDEX: 41, FILTER: 43 } as const;
const OP = { READ: 1, WRITE: 2, TOUCH: 11, DELETE: 14 } as const;
const PARTICLE_NIL = 0;
// Particle types (as_bytes_type in the C client); strings inside lists and maps carry one too.
const PARTICLE = { INTEGER: 1, DOUBLE: 2, STRING: 3, BLOB: 4, MAP: 19, LIST: 20 } as const;
// The Node client builds every map as an as_orderedmap, which as_msgpack packs as key-ordered.
const MAP_K_ORDERED = 0x01;
const MAX_BIN_NAME_BYTES = 15;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const ROW = { REPEAT: 0x01, INFO: 0x02, GEN: 0x04, TTL: 0x08, INFO4: 0x10 } as const;
const [OK, NOT_FOUND, GENERATION_MISMATCH, BAD_REQUEST, EXISTS] = [0, 2, 3, 4, 5];
const [UNSUPPORTED, KEY_MISMATCH, NAMESPACE_NOT_FOUND] = [16, 19, 20];

interface Bin {
  type: number;
  value: Buffer;
}

interface StoredRecord {
  set: string;
  // The flat key (particle type byte, then the key's bytes) when a command sent one.
  key: Buffer | undefined;
  bins: Map<string, Bin>;
  generation: number;
  voidTime: number;
}

interface Op {
  op: number;
  name: string;
  type: number;
  value: Buffer;
}

interface Command {
  info1: number;
  info2: number;
  info3: number;
  generation: number;
  ttl: number;
  fields: Map<number, Buffer>;
  ops: Op[];
}

interface Outcome {
  result: number;
  generation: number;
  voidTime: number;
  bins: Op[];
}

class BadRequest extends Error {}

/** Bounds-checked big-endian reader: any overrun becomes a bad-request reply, not a crash. */
class Reader {
  pos = 0;
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  take(n: number): Buffer {
    if (n < 0 || this.pos + n > this.buf.length) throw new BadRequest('truncated message');
    this.pos += n;
    return this.buf.subarray(this.pos - n, this.pos);
  }
  u8(): number {
    return this.take(1).readUInt8(0);
  }
  u16(): number {
    return this.take(2).readUInt16BE(0);
  }
  u32(): number {
    return this.take(4).readUInt32BE(0);
  }
}

function readFieldsAndOps(r: Reader, nFields: number, nOps: number) {
  const fields = new Map<number, Buffer>();
  for (let i = 0; i < nFields; i++) {
    const size = r.u32();
    if (size < 1) throw new BadRequest('empty field');
    const type = r.u8();
    fields.set(type, Buffer.from(r.take(size - 1)));
  }
  const ops: Op[] = [];
  for (let i = 0; i < nOps; i++) {
    const size = r.u32();
    const op = r.u8();
    const type = r.u8();
    r.u8();
    const nameLength = r.u8();
    if (size < 4 + nameLength) throw new BadRequest('bad op size');
    const name = r.take(nameLength).toString('utf8');
    // Copied so stored bins do not pin the whole receive buffer.
    ops.push({ op, type, name, value: Buffer.from(r.take(size - 4 - nameLength)) });
  }
  return { fields, ops };
}

function inflate(data: Buffer): Buffer {
  try {
    return inflateSync(data);
  } catch {
    throw new BadRequest('bad zlib data');
  }
}

function message(outcome: Outcome, slot: number, info3 = 0): Buffer {
  const header = Buffer.alloc(22);
  header.writeUInt8(22, 0);
  header.writeUInt8(info3, 3);
  header.writeUInt8(outcome.result, 5);
  header.writeUInt32BE(outcome.generation, 6);
  header.writeUInt32BE(outcome.voidTime, 10);
  header.writeUInt32BE(slot, 14);
  header.writeUInt16BE(outcome.bins.length, 20);
  const parts: Buffer[] = [header];
  for (const bin of outcome.bins) {
    const name = Buffer.from(bin.name, 'utf8');
    const head = Buffer.alloc(8);
    head.writeUInt32BE(4 + name.length + bin.value.length, 0);
    head.writeUInt8(OP.READ, 4);
    head.writeUInt8(bin.type, 5);
    head.writeUInt8(name.length, 7);
    parts.push(head, name, bin.value);
  }
  return Buffer.concat(parts);
}

function proto(type: number, body: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt8(2, 0);
  header.writeUInt8(type, 1);
  header.writeUIntBE(body.length, 2, 6);
  return Buffer.concat([header, body]);
}

function failure(result: number): Outcome {
  return { result, generation: 0, voidTime: 0, bins: [] };
}

function nowSinceEpoch(): number {
  return Math.floor(Date.now() / 1000) - CITRUSLEAF_EPOCH;
}

/**
 * Request ttl to void time. Simplified: 0 (namespace default) and 0xFFFFFFFF mean never expire,
 * 0xFFFFFFFE keeps the current void time, anything else expires that many seconds from now.
 */
function voidTimeFor(ttl: number, current: StoredRecord | undefined): number {
  if (ttl === 0 || ttl === 0xffffffff) return 0;
  if (ttl === 0xfffffffe) return current?.voidTime ?? 0;
  return nowSinceEpoch() + ttl;
}

function int64(value: bigint, what: string): bigint {
  if (value < INT64_MIN || value > INT64_MAX) throw new Error(`${what}: ${value} is not an int64`);
  return value;
}

function parseInt64(text: unknown, what: string): bigint {
  if (typeof text !== 'string' || !/^-?\d+$/.test(text)) {
    throw new Error(`${what}: ${JSON.stringify(text)} is not a decimal integer`);
  }
  return int64(BigInt(text), what);
}

/** The key as the client hashes and sends it (as_key_set_digest, as_command_write_user_key). */
function flatKey(key: SeedKey): Buffer {
  switch (key.type) {
    case 'string':
      return Buffer.concat([Buffer.of(PARTICLE.STRING), Buffer.from(key.value, 'utf8')]);
    case 'integer': {
      const flat = Buffer.alloc(9);
      flat.writeUInt8(PARTICLE.INTEGER, 0);
      flat.writeBigInt64BE(parseInt64(key.value, 'integer key'), 1);
      return flat;
    }
    case 'bytes':
      return Buffer.concat([Buffer.of(PARTICLE.BLOB), Buffer.from(key.value, 'base64')]);
    default:
      throw new Error(`unknown key type ${JSON.stringify((key as { type: unknown }).type)}`);
  }
}

/** RIPEMD-160 over the set name and the flat key, as cf_digest_compute2 in the C client. */
function digestOf(set: string, key: SeedKey): Buffer {
  return createHash('ripemd160').update(set, 'utf8').update(flatKey(key)).digest();
}

type SeedNumber = { kind: 'int'; value: bigint } | { kind: 'double'; value: number };

/** The number a seed value spells, if it is one (see SeedValue). */
function numberOf(value: unknown, what: string): SeedNumber | undefined {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return { kind: 'double', value };
    return { kind: 'int', value: int64(BigInt(value), what) };
  }
  if (!isPlainObject(value) || Object.keys(value).length !== 1) return undefined;
  if ('int' in value && typeof value.int === 'string') {
    return { kind: 'int', value: parseInt64(value.int, what) };
  }
  if ('double' in value && typeof value.double === 'number') {
    return { kind: 'double', value: value.double };
  }
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function sized(code: number, size: number, bytes: 1 | 2 | 4 | 8): Buffer {
  const out = Buffer.alloc(1 + bytes);
  out.writeUInt8(code, 0);
  out.writeUIntBE(size, 1, bytes);
  return out;
}

// as_msgpack.c picks the smallest form, as below, for every header and integer.
function packHeader(count: number, fix: number, code16: number, code32: number): Buffer {
  if (count < 16) return Buffer.of(fix | count);
  return count < 0x10000 ? sized(code16, count, 2) : sized(code32, count, 4);
}

function packStringHeader(size: number): Buffer {
  if (size < 32) return Buffer.of(0xa0 | size);
  if (size < 0x100) return sized(0xd9, size, 1);
  return size < 0x10000 ? sized(0xda, size, 2) : sized(0xdb, size, 4);
}

function packInt(value: bigint): Buffer {
  const out = Buffer.alloc(9);
  if (value >= 0n) {
    if (value < 0x80n) return Buffer.of(Number(value));
    if (value < 0x100n) return sized(0xcc, Number(value), 1);
    if (value < 0x10000n) return sized(0xcd, Number(value), 2);
    if (value < 0x100000000n) return sized(0xce, Number(value), 4);
    out.writeUInt8(0xcf, 0);
    out.writeBigUInt64BE(value, 1);
    return out;
  }
  if (value >= -32n) return Buffer.of(Number(value) & 0xff);
  if (value >= -0x80n) return Buffer.of(0xd0, Number(value) & 0xff);
  if (value >= -0x8000n) return sized(0xd1, Number(value) & 0xffff, 2);
  if (value >= -0x80000000n) return sized(0xd2, Number(value) >>> 0, 4);
  out.writeUInt8(0xd3, 0);
  out.writeBigInt64BE(value, 1);
  return out;
}

/** Aerospike's msgpack for a list or map element, as as_pack_val writes it. */
function pack(value: unknown, what: string, out: Buffer[]): void {
  if (value === null) {
    out.push(Buffer.of(0xc0));
  } else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    out.push(packStringHeader(bytes.length + 1), Buffer.of(PARTICLE.STRING), bytes);
  } else if (Array.isArray(value)) {
    out.push(packHeader(value.length, 0x90, 0xdc, 0xdd));
    for (const [i, item] of value.entries()) pack(item, `${what}[${i}]`, out);
  } else {
    const number = numberOf(value, what);
    if (number?.kind === 'int') {
      out.push(packInt(number.value));
    } else if (number?.kind === 'double') {
      const double = Buffer.alloc(9);
      double.writeUInt8(0xcb, 0);
      double.writeDoubleBE(number.value, 1);
      out.push(double);
    } else if (isPlainObject(value)) {
      // A key-ordered map: one extra element, the ext header with the flags, then nil; entries
      // sorted by key bytes (strcmp), as the client's as_orderedmap holds them.
      const entries = Object.entries(value)
        .map(([key, item]) => ({ key: Buffer.from(key, 'utf8'), item }))
        .sort((a, b) => Buffer.compare(a.key, b.key));
      out.push(packHeader(entries.length + 1, 0x80, 0xde, 0xdf));
      out.push(Buffer.of(0xc7, 0x00, MAP_K_ORDERED, 0xc0));
      for (const { key, item } of entries) {
        out.push(packStringHeader(key.length + 1), Buffer.of(PARTICLE.STRING), key);
        pack(item, `${what}.${key.toString('utf8')}`, out);
      }
    } else {
      throw new Error(`${what}: unsupported seed value ${String(value)}`);
    }
  }
}

/** A bin value as the client writes it (as_command_write_bin); null is a bin delete. */
function binOf(value: unknown, what: string): Bin {
  if (value === null) return { type: PARTICLE_NIL, value: Buffer.alloc(0) };
  if (
    isPlainObject(value) &&
    Object.keys(value).length === 2 &&
    typeof value.particle === 'number' &&
    typeof value.bytes === 'string'
  ) {
    return { type: value.particle, value: Buffer.from(value.bytes, 'base64') };
  }
  if (typeof value === 'string')
    return { type: PARTICLE.STRING, value: Buffer.from(value, 'utf8') };
  const number = numberOf(value, what);
  const fixed = Buffer.alloc(8);
  if (number?.kind === 'int') {
    fixed.writeBigInt64BE(number.value);
    return { type: PARTICLE.INTEGER, value: fixed };
  }
  if (number?.kind === 'double') {
    fixed.writeDoubleBE(number.value);
    return { type: PARTICLE.DOUBLE, value: fixed };
  }
  const parts: Buffer[] = [];
  pack(value, what, parts);
  return { type: Array.isArray(value) ? PARTICLE.LIST : PARTICLE.MAP, value: Buffer.concat(parts) };
}

function raw(particle: Bin): RawParticle {
  return { type: particle.type, value: particle.value.toString('base64') };
}

/** Records keyed by namespace, then digest (hex). */
type Records = Map<string, Map<string, StoredRecord>>;

/**
 * One in-memory node: records keyed by namespace, then digest, shared by every node of its
 * cluster. Each node holds every record, so a node asked for a partition it does not own
 * answers as a real node answers by proxying to the owner.
 */
export class AerospikeServer {
  readonly #namespaces: Records;
  readonly #cluster: Cluster;
  readonly #index: number;
  #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #mode: AerospikeMode = { kind: 'normal' };
  #stats = AerospikeServer.#zero();

  constructor(namespaces: readonly string[] | Records, cluster?: Cluster, index = 0) {
    this.#namespaces = Array.isArray(namespaces)
      ? new Map(namespaces.map((ns) => [ns, new Map<string, StoredRecord>()]))
      : (namespaces as Records);
    this.#cluster = cluster ?? new Cluster(1, 1, 0);
    this.#index = index;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  /** Stops listening and hangs up: at once (a crash), or after the replies it owes (a stop). */
  stop(graceful: boolean): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#sockets) {
      // Graceful: what was written goes out, then the socket closes (a process that exits).
      if (graceful) socket.end(() => socket.destroy());
      else socket.destroy();
    }
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server = createServer((socket) => this.#accept(socket));
    return closed;
  }

  static #zero(): AerospikeStats {
    return {
      info: 0,
      reads: 0,
      batchReads: 0,
      batchKeys: 0,
      writes: 0,
      deletes: 0,
      connections: 0,
    };
  }

  /** Listens on 127.0.0.1 and resolves with the port (0 picks an ephemeral one). */
  listen(port = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => {
        const address = this.#server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /** Stops listening, drops every connection and pending delayed reply. */
  close(): Promise<void> {
    if (!this.#server.listening) {
      for (const socket of this.#sockets) socket.destroy();
      return Promise.resolve();
    }
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** Switches mode from the cluster (a node cut off, then back). */
  setModeNow(mode: AerospikeMode): void {
    this.#mode = mode;
  }

  /** Whether this node answers at all (not silent). */
  answering(): boolean {
    return this.#mode.kind !== 'silent';
  }

  /** Executes one control request from the test process. */
  async control(request: ControlRequest): Promise<unknown> {
    switch (request.op) {
      case 'setMode':
        this.#mode = request.mode;
        return undefined;
      case 'stats':
        return { ...this.#stats };
      case 'resetStats':
        this.#stats = AerospikeServer.#zero();
        return undefined;
      case 'recordCount': {
        const now = nowSinceEpoch();
        let count = 0;
        for (const rec of this.#namespaces.get(request.namespace)?.values() ?? []) {
          const live = rec.voidTime === 0 || rec.voidTime > now;
          if (live && (request.set === undefined || rec.set === request.set)) count++;
        }
        return count;
      }
      case 'seed':
        this.#seed(request.namespace, request.records);
        return undefined;
      case 'digestOf':
        return digestOf(request.set, request.key).toString('hex');
      case 'rawRecord':
        return this.#rawRecord(request.namespace, request.digest);
      default:
        throw new Error(`${request.op} is a cluster request`);
    }
  }

  /** Writes records as client.put with default policies would: bins merge into a live record. */
  #seed(namespace: string, records: readonly SeedRecord[]): void {
    if (!this.#namespaces.has(namespace)) throw new Error(`namespace ${namespace} not found`);
    // Everything is encoded before anything is written, so bad input leaves the store untouched.
    const commands = records.map(({ set, key, bins, ttlSecs }): Command => {
      if (
        ttlSecs !== undefined &&
        !(Number.isInteger(ttlSecs) && ttlSecs > 0 && ttlSecs < 2 ** 31)
      ) {
        throw new Error(`ttlSecs ${ttlSecs} is not a positive number of seconds`);
      }
      const ops = Object.entries(bins).map(([name, value]): Op => {
        if (Buffer.byteLength(name) > MAX_BIN_NAME_BYTES || name.length === 0) {
          throw new Error(`bin name ${JSON.stringify(name)} is empty or over 15 bytes`);
        }
        return { op: OP.WRITE, name, ...binOf(value, `bin ${name}`) };
      });
      const fields = new Map<number, Buffer>([
        [FIELD.NAMESPACE, Buffer.from(namespace, 'utf8')],
        [FIELD.SET, Buffer.from(set, 'utf8')],
        [FIELD.DIGEST, digestOf(set, key)],
      ]);
      return {
        info1: 0,
        info2: INFO2.WRITE,
        info3: 0,
        generation: 0,
        ttl: ttlSecs ?? 0,
        fields,
        ops,
      };
    });
    for (const command of commands) {
      const { result } = this.#execute(command);
      if (result !== OK) throw new Error(`seed write failed with result code ${result}`);
    }
  }

  #rawRecord(namespace: string, digest: string): RawRecord | undefined {
    const rec = this.#namespaces.get(namespace)?.get(digest.toLowerCase());
    if (!rec || (rec.voidTime !== 0 && rec.voidTime <= nowSinceEpoch())) return undefined;
    const key = rec.key && raw({ type: rec.key.readUInt8(0), value: rec.key.subarray(1) });
    const bins = Object.fromEntries([...rec.bins].map(([name, bin]) => [name, raw(bin)]));
    return { set: rec.set, generation: rec.generation, key, bins };
  }

  #accept(socket: Socket): void {
    this.#stats.connections++;
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    // Clients hang up mid-reply on timeouts; that is expected, not a server failure.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#sockets.delete(socket));
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 8 && !socket.destroyed) {
        const size = pending.readUIntBE(2, 6);
        if (pending.readUInt8(0) !== 2 || size > MAX_BODY) {
          socket.destroy();
          return;
        }
        if (pending.length < 8 + size) return;
        const type = pending.readUInt8(1);
        const body = pending.subarray(8, 8 + size);
        pending = pending.subarray(8 + size);
        this.#onProto(socket, type, body);
      }
    });
  }

  #onProto(socket: Socket, type: number, body: Buffer): void {
    const mode = this.#mode;
    if (mode.kind === 'silent') return;
    if (type === 1) {
      this.#stats.info++;
      socket.write(proto(1, this.#info(socket, body.toString('utf8'))));
      return;
    }
    // Admin (type 2) would mean the client wants authentication, which is not emulated.
    if ((type !== 3 && type !== 4) || mode.kind === 'drop') {
      socket.destroy();
      return;
    }
    if (mode.kind === 'refuse') {
      socket.write(proto(3, message(failure(mode.result), 0, INFO3.LAST)));
      return;
    }
    const reply = this.#dataReply(type, body);
    if (mode.kind === 'normal') {
      socket.write(reply);
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!socket.destroyed) socket.write(reply);
    }, mode.delayMs);
    this.#timers.add(timer);
  }

  #info(socket: Socket, request: string): Buffer {
    const lines = request
      .split('\n')
      .filter((name) => name.length > 0)
      .map((name) => `${name}\t${this.#infoValue(socket, name)}\n`);
    return Buffer.from(lines.join(''), 'utf8');
  }

  #infoValue(socket: Socket, name: string): string {
    const namespaces = [...this.#namespaces.keys()];
    const cluster = this.#cluster;
    switch (name.split(':')[0]) {
      case 'node':
        return cluster.nodeName(this.#index);
      case 'build':
        return BUILD;
      case 'partition-generation':
        return String(cluster.partitionGeneration);
      case 'peers-generation':
        return String(cluster.peersGeneration);
      case 'partitions':
        return String(N_PARTITIONS);
      case 'peers-clear-std':
      case 'peers-clear-alt':
        return cluster.peers(this.#index);
      case 'peers-tls-std':
      case 'peers-tls-alt':
        return `${cluster.peersGeneration},,[]`;
      case 'replicas':
        return cluster.replicas(this.#index, namespaces);
      case 'service-clear-std':
        // The dialled address, so the client never re-dials an advertised one.
        return `${socket.localAddress}:${socket.localPort}`;
      case 'namespaces':
        return namespaces.join(';');
      case 'cluster-name':
        return 'null';
      case 'features':
        return 'pscans;batch-any;pquery;query-show';
      case 'user-agent-set':
      case 'status':
        return 'ok';
      default:
        // Unknown names get an empty value: the client reads replies by position.
        return '';
    }
  }

  #dataReply(type: number, body: Buffer): Buffer {
    let msg = body;
    try {
      if (type === 4) {
        // Compressed: u64 uncompressed size, then zlib of a whole type-3 proto.
        const inner = inflate(body.subarray(8));
        if (inner.length < 8 || inner.readUInt8(1) !== 3) throw new BadRequest('bad compressed');
        msg = inner.subarray(8);
      }
      const r = new Reader(msg);
      const headerSize = r.u8();
      if (headerSize < 22) throw new BadRequest('short header');
      const info1 = r.u8();
      const info2 = r.u8();
      const info3 = r.u8();
      r.take(2);
      const generation = r.u32();
      const ttl = r.u32();
      r.u32();
      const nFields = r.u16();
      const nOps = r.u16();
      r.take(headerSize - 22);
      const { fields, ops } = readFieldsAndOps(r, nFields, nOps);
      // As as_transaction_prepare on a real node: the fields and ops must fill the message
      // exactly (a field size that runs past it, or leaves bytes over, is refused with 4).
      if (r.pos !== msg.length) throw new BadRequest('extra bytes follow fields and bin-ops');
      if (info1 & INFO1.BATCH_INDEX) return this.#batch(fields);
      const command: Command = { info1, info2, info3, generation, ttl, fields, ops };
      if (info2 & INFO2.DELETE) this.#stats.deletes++;
      else if (info2 & INFO2.WRITE) this.#stats.writes++;
      else this.#stats.reads++;
      return proto(3, message(this.#execute(command), 0));
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      // Unparseable input: a bad-request reply, flagged LAST so that it also ends a batch.
      return proto(3, message(failure(BAD_REQUEST), 0, INFO3.LAST));
    }
  }

  #batch(fields: Map<number, Buffer>): Buffer {
    this.#stats.batchReads++;
    const field = fields.get(FIELD.BATCH_INDEX);
    if (!field) throw new BadRequest('no batch field');
    // A filter applies to every row and is not evaluated here, so refuse the whole batch.
    if (fields.has(FIELD.FILTER)) return proto(3, message(failure(UNSUPPORTED), 0, INFO3.LAST));
    const r = new Reader(field);
    const count = r.u32();
    r.u8();
    this.#stats.batchKeys += count;
    const rows: { index: number; outcome: Outcome }[] = [];
    let previous: Command | undefined;
    for (let i = 0; i < count; i++) {
      const index = r.u32();
      const digest = Buffer.from(r.take(20));
      const rowType = r.u8();
      let row: Command;
      if (rowType === ROW.REPEAT) {
        if (!previous) throw new BadRequest('repeat without a previous row');
        row = previous;
      } else {
        // Row type 0 is the pre-6.0 read row: one read-attribute byte.
        const info1 = rowType === 0 || rowType & ROW.INFO ? r.u8() : 0;
        const info2 = rowType & ROW.INFO ? r.u8() : 0;
        const info3 = rowType & ROW.INFO ? r.u8() : 0;
        if (rowType & ROW.INFO4) r.u8();
        const generation = rowType & ROW.GEN ? r.u16() : 0;
        const ttl = rowType & ROW.TTL ? r.u32() : 0;
        const nFields = r.u16();
        const nOps = r.u16();
        row = { info1, info2, info3, generation, ttl, ...readFieldsAndOps(r, nFields, nOps) };
        previous = row;
      }
      const rowFields = new Map(row.fields).set(FIELD.DIGEST, digest);
      rows.push({ index, outcome: this.#execute({ ...row, fields: rowFields }) });
    }
    const protos: Buffer[] = [];
    let chunk: Buffer[] = [];
    let chunkSize = 0;
    for (const { index, outcome } of rows) {
      const msg = message(outcome, index);
      if (chunkSize + msg.length > MAX_REPLY_PROTO && chunk.length > 0) {
        protos.push(proto(3, Buffer.concat(chunk)));
        chunk = [];
        chunkSize = 0;
      }
      chunk.push(msg);
      chunkSize += msg.length;
    }
    chunk.push(message(failure(OK), 0, INFO3.LAST));
    protos.push(proto(3, Buffer.concat(chunk)));
    return Buffer.concat(protos);
  }

  #execute(command: Command): Outcome {
    const { info1, info2, info3, fields, ops } = command;
    const ns = fields.get(FIELD.NAMESPACE)?.toString('utf8');
    const digest = fields.get(FIELD.DIGEST);
    if (ns === undefined || digest?.length !== 20) return failure(BAD_REQUEST);
    if (fields.has(FIELD.FILTER)) return failure(UNSUPPORTED);
    const records = this.#namespaces.get(ns);
    if (!records) return failure(NAMESPACE_NOT_FOUND);
    const id = digest.toString('hex');
    let existing = records.get(id);
    if (existing && existing.voidTime !== 0 && existing.voidTime <= nowSinceEpoch()) {
      records.delete(id);
      existing = undefined;
    }
    const allBins = (rec: StoredRecord): Op[] =>
      [...rec.bins].map(([name, bin]) => ({ op: OP.READ, name, ...bin }));
    const done = (rec: StoredRecord, bins: Op[]): Outcome => ({
      result: OK,
      generation: rec.generation,
      voidTime: rec.voidTime,
      bins,
    });

    // A sent key (policy key SEND) is checked against a stored one, as the server's
    // check_msg_key does; only a digest collision or a hand-made request can fail it.
    const sentKey = fields.get(FIELD.KEY);
    const keyMismatch = sentKey && existing?.key && !sentKey.equals(existing.key);

    if (!(info2 & (INFO2.WRITE | INFO2.DELETE))) {
      if (!existing) return failure(NOT_FOUND);
      if (keyMismatch) return failure(KEY_MISMATCH);
      if (info1 & INFO1.NOBINDATA) return done(existing, []);
      if (info1 & INFO1.GET_ALL || ops.length === 0) return done(existing, allBins(existing));
      if (ops.some((op) => op.op !== OP.READ)) return failure(UNSUPPORTED);
      const bins: Op[] = [];
      for (const op of ops) {
        const bin = existing.bins.get(op.name);
        if (bin) bins.push({ ...op, ...bin });
      }
      return done(existing, bins);
    }

    if (existing && info2 & INFO2.GEN && command.generation !== existing.generation) {
      return failure(GENERATION_MISMATCH);
    }
    if (existing && info2 & INFO2.GEN_GT && command.generation <= existing.generation) {
      return failure(GENERATION_MISMATCH);
    }
    if (keyMismatch) return failure(KEY_MISMATCH);
    if (info2 & INFO2.DELETE && ops.length === 0) {
      if (!existing) return failure(NOT_FOUND);
      records.delete(id);
      return failure(OK);
    }
    // As get_msg_key: a key to store must not be empty, and an integer one has 8 bytes.
    const badKey =
      sentKey?.length === 0 || (sentKey?.[0] === PARTICLE.INTEGER && sentKey.length !== 9);
    if (badKey && !existing?.key) return failure(UNSUPPORTED);
    if (existing && info2 & INFO2.CREATE_ONLY) return failure(EXISTS);
    if (!existing && info3 & (INFO3.UPDATE_ONLY | INFO3.REPLACE_ONLY)) return failure(NOT_FOUND);
    const replace = info3 & (INFO3.CREATE_OR_REPLACE | INFO3.REPLACE_ONLY);
    const bins = new Map(existing && !replace ? existing.bins : []);
    const replies: Op[] = [];
    const respondAll = (info2 & INFO2_RESPOND_ALL_OPS) !== 0;
    let deleted = false;
    for (const op of ops) {
      if (op.op === OP.READ) {
        const bin = bins.get(op.name);
        if (bin || respondAll) replies.push({ ...op, ...(bin ?? { type: PARTICLE_NIL }) });
        continue;
      }
      if (op.op === OP.WRITE) {
        if (op.type === PARTICLE_NIL) bins.delete(op.name);
        else bins.set(op.name, { type: op.type, value: op.value });
      } else if (op.op === OP.TOUCH) {
        if (!existing) return failure(NOT_FOUND);
      } else if (op.op === OP.DELETE) {
        deleted = true;
        bins.clear();
      } else {
        // incr, append, prepend and CDT/bit/HLL/expression ops are not emulated.
        return failure(UNSUPPORTED);
      }
      if (respondAll) replies.push({ ...op, type: PARTICLE_NIL, value: Buffer.alloc(0) });
    }
    const record: StoredRecord = {
      set: fields.get(FIELD.SET)?.toString('utf8') ?? '',
      // As on the server, a stored key stays; otherwise the one sent, if any, is stored.
      key: existing?.key ?? sentKey,
      bins,
      // Generations are 16 bits on the server and wrap past zero.
      generation: existing ? (existing.generation % 0xffff) + 1 : 1,
      voidTime: voidTimeFor(command.ttl, existing),
    };
    // As on a real server, a record left without bins no longer exists.
    if (deleted || bins.size === 0) records.delete(id);
    else records.set(id, record);
    if (info1 & INFO1.GET_ALL && !deleted) replies.push(...allBins(record));
    return done(record, replies);
  }
}

/**
 * A 32-bit FNV-1a hash: the rank of a node for a partition. Real nodes rank with a hash of the
 * node id and the partition id too (the succession list); any stable spread will do here.
 */
function rank(node: string, partition: number): number {
  let h = 0x811c9dc5;
  for (const c of `${node}:${partition}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/**
 * The cluster as its nodes advertise it to clients: membership (peers), generations and the
 * partition map (replicas), as the info commands the client tends with report them. A node that
 * stops (or is cut off: it answers nothing) stays a member until the others miss its heartbeats
 * for heartbeatTimeoutMs (the real default: 10 intervals of 150 ms), then the survivors
 * advertise new peers and a new map and both generations move. A node started again answers
 * only once it has joined (a real node opens its service port after joining). One node: the
 * map a single node advertises, every partition its own.
 */
export class Cluster {
  readonly nodes: { name: string; port: number; running: boolean; member: boolean }[];
  readonly servers: AerospikeServer[] = [];
  peersGeneration = 1;
  partitionGeneration = 1;
  readonly #rf: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #timers = new Set<NodeJS.Timeout>();
  #map: { generation: number; bitmaps: Map<number, string[]> } | undefined;

  constructor(count: number, replicationFactor: number, heartbeatTimeoutMs: number) {
    this.nodes = Array.from({ length: count }, (_, i) => ({
      // Node names are 15 hex digits (node 0: BB9E0000000000A).
      name: `BB9E00000000${i.toString(16).padStart(2, '0')}A`,
      port: 0,
      running: true,
      member: true,
    }));
    this.#rf = replicationFactor;
    this.#heartbeatTimeoutMs = heartbeatTimeoutMs;
  }

  nodeName(i: number): string {
    return this.nodes[i]?.name ?? '';
  }

  /** `peers-clear-std`: the other members, each `[name,,[127.0.0.1:port]]`. */
  peers(self: number): string {
    const others = this.nodes
      .filter((n, i) => i !== self && n.member)
      .map((n) => `[${n.name},,[127.0.0.1:${n.port}]]`);
    return `${this.peersGeneration},,[${others.join(',')}]`;
  }

  /** `replicas`: per namespace, regime 0 (AP), the replica count, one bitmap per replica index. */
  replicas(self: number, namespaces: readonly string[]): string {
    const members = this.nodes.filter((n) => n.member).length;
    const rf = Math.max(1, Math.min(this.#rf, members));
    const bitmaps = this.#bitmaps().get(self) ?? [];
    return namespaces.map((ns) => `${ns}:0,${rf},${bitmaps.slice(0, rf).join(',')}`).join(';');
  }

  /** Where each partition lives: its members ranked per partition, master first. */
  #bitmaps(): Map<number, string[]> {
    if (this.#map?.generation === this.partitionGeneration) return this.#map.bitmaps;
    const members = this.nodes.flatMap((n, i) => (n.member ? [i] : []));
    const rf = Math.max(1, Math.min(this.#rf, members.length));
    const bits = new Map(
      members.map((i) => [i, Array.from({ length: rf }, () => Buffer.alloc(N_PARTITIONS / 8))]),
    );
    for (let p = 0; p < N_PARTITIONS; p++) {
      const ranked = [...members].sort(
        (a, b) => rank(this.nodeName(b), p) - rank(this.nodeName(a), p),
      );
      for (let r = 0; r < rf; r++) {
        const owner = bits.get(ranked[r] as number)?.[r] as Buffer;
        owner[p >> 3] = (owner[p >> 3] as number) | (0x80 >> (p & 7));
      }
    }
    const bitmaps = new Map(
      [...bits].map(([i, maps]) => [i, maps.map((b) => b.toString('base64'))]),
    );
    this.#map = { generation: this.partitionGeneration, bitmaps };
    return bitmaps;
  }

  #changed(): void {
    this.peersGeneration++;
    this.partitionGeneration++;
  }

  #later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      action();
    }, ms);
    this.#timers.add(timer);
  }

  /** Node i stops answering (crash, stop or network cut); the others drop it after the timeout. */
  #departs(i: number): void {
    this.#later(this.#heartbeatTimeoutMs, () => {
      const node = this.nodes[i];
      if (!node?.member || (node.running && this.servers[i]?.answering())) return;
      node.member = false;
      this.#changed();
    });
  }

  async stopNode(i: number, graceful: boolean): Promise<void> {
    const node = this.#node(i);
    node.running = false;
    await this.servers[i]?.stop(graceful);
    this.#departs(i);
  }

  /** Starts node i again on its port; it answers once it has joined (after a heartbeat timeout's fifth). */
  async startNode(i: number): Promise<void> {
    const node = this.#node(i);
    if (node.running) return;
    node.running = true;
    await new Promise((resolve) => setTimeout(resolve, this.#heartbeatTimeoutMs / 5));
    await this.servers[i]?.listen(node.port);
    if (!node.member) {
      node.member = true;
      this.#changed();
    }
  }

  /** Node i is cut off: it keeps its sockets but answers nothing; the others drop it in time. */
  isolateNode(i: number): void {
    this.servers[i]?.setModeNow({ kind: 'silent' });
    this.#departs(i);
  }

  /** Node i is reachable again and rejoins. */
  healNode(i: number): void {
    this.servers[i]?.setModeNow({ kind: 'normal' });
    const node = this.#node(i);
    if (!node.member) {
      node.member = true;
      this.#changed();
    }
  }

  view(): ClusterView {
    return {
      nodes: this.nodes.map((n) => ({ ...n })),
      peersGeneration: this.peersGeneration,
      partitionGeneration: this.partitionGeneration,
    };
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await Promise.all(this.servers.map((s) => s.close()));
  }

  #node(i: number) {
    const node = this.nodes[i];
    if (!node) throw new Error(`no node ${i}`);
    return node;
  }
}

interface ClusterOptions {
  namespaces: string[];
  nodes: number;
  replicationFactor: number;
  heartbeatTimeoutMs: number;
}

function clusterOptionsFrom(data: unknown): ClusterOptions {
  const d = (data ?? {}) as Partial<Record<keyof ClusterOptions, unknown>>;
  const list = d.namespaces;
  const int = (v: unknown, fallback: number) => (Number.isInteger(v) ? (v as number) : fallback);
  return {
    namespaces:
      Array.isArray(list) && list.every((ns) => typeof ns === 'string')
        ? list
        : ['profiles', 'test'],
    nodes: int(d.nodes, 1),
    replicationFactor: int(d.replicationFactor, 2),
    heartbeatTimeoutMs: int(d.heartbeatTimeoutMs, 1_500),
  };
}

/** Serves control requests: node ones to their node, the cluster's to the cluster. */
async function control(cluster: Cluster, request: ControlRequest): Promise<unknown> {
  switch (request.op) {
    case 'stopNode':
      return cluster.stopNode(request.node, request.graceful);
    case 'startNode':
      return cluster.startNode(request.node);
    case 'isolateNode':
      return cluster.isolateNode(request.node);
    case 'healNode':
      return cluster.healNode(request.node);
    case 'clusterView':
      return cluster.view();
    case 'close':
      return cluster.close();
    case 'setMode':
    case 'stats':
    case 'resetStats': {
      const server = cluster.servers[request.node ?? 0];
      if (!server) throw new Error(`no node ${request.node}`);
      return server.control(request);
    }
    default:
      // Records are shared: any node answers for them all.
      return (cluster.servers[0] as AerospikeServer).control(request);
  }
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const options = clusterOptionsFrom(workerData);
  const records: Records = new Map(
    options.namespaces.map((ns) => [ns, new Map<string, StoredRecord>()]),
  );
  const cluster = new Cluster(options.nodes, options.replicationFactor, options.heartbeatTimeoutMs);
  for (let i = 0; i < options.nodes; i++) {
    cluster.servers.push(new AerospikeServer(records, cluster, i));
  }
  port.on('message', (request: ControlRequest) => {
    control(cluster, request).then(
      (value) => port.postMessage({ kind: 'reply', id: request.id, value } satisfies ControlReply),
      (error: unknown) =>
        port.postMessage({
          kind: 'failed',
          id: request.id,
          message: String(error),
        } satisfies ControlReply),
    );
  });
  Promise.all(
    cluster.servers.map(async (server, i) => {
      const listening = await server.listen();
      (cluster.nodes[i] as { port: number }).port = listening;
      return listening;
    }),
  ).then((ports) => port.postMessage({ kind: 'ready', ports }));
}
