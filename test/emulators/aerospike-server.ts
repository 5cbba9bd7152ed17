// Runs as a worker thread loaded by plain Node: keep to erasable TypeScript and node: imports only.
import { createServer, type Server, type Socket } from 'node:net';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { inflateSync } from 'node:zlib';

/**
 * How the server treats traffic: answer; ignore everything; apply data commands at once but
 * reply only after delayMs (info is answered at once); or hang up on any data command.
 */
export type AerospikeMode =
  | { kind: 'normal' }
  | { kind: 'silent' }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'drop' };

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

/** A request from the controller thread to the worker. */
export type ControlRequest =
  | { id: number; op: 'setMode'; mode: AerospikeMode }
  | { id: number; op: 'stats' | 'resetStats' | 'close' }
  | { id: number; op: 'recordCount'; namespace: string; set?: string };

/** A worker message: the listening port once, then one reply per control request. */
export type ControlReply =
  | { kind: 'ready'; port: number }
  | { kind: 'reply'; id: number; value: unknown }
  | { kind: 'failed'; id: number; message: string };

const MAX_BODY = 128 * 1024 * 1024;
const MAX_REPLY_PROTO = 128 * 1024;
const NODE_NAME = 'BB9E0000000000A';
const BUILD = '8.0.0.0'; // >= 6.0 makes the client use the batch row format parsed below.
const CITRUSLEAF_EPOCH = 1262304000;
// One node owns all 4096 partitions: 512 bytes of 0xFF, 684 base64 characters.
const FULL_BITMAP = Buffer.alloc(512, 0xff).toString('base64');

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
const FIELD = { NAMESPACE: 0, SET: 1, DIGEST: 4, BATCH_INDEX: 41, FILTER: 43 } as const;
const OP = { READ: 1, WRITE: 2, TOUCH: 11, DELETE: 14 } as const;
const PARTICLE_NIL = 0;
const ROW = { REPEAT: 0x01, INFO: 0x02, GEN: 0x04, TTL: 0x08, INFO4: 0x10 } as const;
const [OK, NOT_FOUND, GENERATION_MISMATCH, BAD_REQUEST, EXISTS] = [0, 2, 3, 4, 5];
const [UNSUPPORTED, NAMESPACE_NOT_FOUND] = [16, 20];

interface Bin {
  type: number;
  value: Buffer;
}

interface StoredRecord {
  set: string;
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

/** The in-memory single-node server: records keyed by namespace, then digest. */
export class AerospikeServer {
  readonly #namespaces: Map<string, Map<string, StoredRecord>>;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #mode: AerospikeMode = { kind: 'normal' };
  #stats = AerospikeServer.#zero();

  constructor(namespaces: readonly string[]) {
    this.#namespaces = new Map(namespaces.map((ns) => [ns, new Map<string, StoredRecord>()]));
    this.#server = createServer((socket) => this.#accept(socket));
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
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
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
      case 'close':
        return this.close();
    }
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
    switch (name.split(':')[0]) {
      case 'node':
        return NODE_NAME;
      case 'build':
        return BUILD;
      case 'partition-generation':
      case 'peers-generation':
        return '1';
      case 'partitions':
        return '4096';
      case 'peers-clear-std':
      case 'peers-clear-alt':
      case 'peers-tls-std':
      case 'peers-tls-alt':
        return '1,,[]';
      case 'replicas':
        return namespaces.map((ns) => `${ns}:0,1,${FULL_BITMAP}`).join(';');
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

    if (!(info2 & (INFO2.WRITE | INFO2.DELETE))) {
      if (!existing) return failure(NOT_FOUND);
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
    if (info2 & INFO2.DELETE && ops.length === 0) {
      if (!existing) return failure(NOT_FOUND);
      records.delete(id);
      return failure(OK);
    }
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

function namespacesFrom(data: unknown): string[] {
  const list = (data as { namespaces?: unknown } | null)?.namespaces;
  if (Array.isArray(list) && list.every((ns) => typeof ns === 'string')) return list;
  return ['profiles', 'test'];
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const server = new AerospikeServer(namespacesFrom(workerData));
  port.on('message', (request: ControlRequest) => {
    server.control(request).then(
      (value) => port.postMessage({ kind: 'reply', id: request.id, value } satisfies ControlReply),
      (error: unknown) =>
        port.postMessage({
          kind: 'failed',
          id: request.id,
          message: String(error),
        } satisfies ControlReply),
    );
  });
  server.listen().then((listening) => port.postMessage({ kind: 'ready', port: listening }));
}
