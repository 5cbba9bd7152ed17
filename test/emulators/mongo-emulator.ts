import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BSON, Decimal128, Double, Int32, Long, ObjectId } from 'bson';

/** A misbehaviour applied to matching commands before normal handling. */
export interface MongoFault {
  command: string;
  nth?: number;
  errorCode?: number;
  errmsg?: string;
  delayMs?: number;
  dropConnection?: boolean;
  times?: number;
}

/** One command as received, with values promoted to plain JS numbers where BSON allows. */
export interface RecordedCommand {
  db: string;
  name: string;
  body: Record<string, unknown>;
}

type Doc = Record<string, unknown>;
interface Command {
  db: string;
  name: string;
  body: Doc;
  raw: Doc;
}
interface Cursor {
  ns: string;
  docs: Doc[];
  position: number;
  killed: AbortController;
}
interface ArmedFault {
  fault: MongoFault;
  seen: number;
  remaining: number;
}

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const CHECKSUM_PRESENT = 1;
const MORE_TO_COME = 2;
const MAX_BSON_SIZE = 16 * 1024 * 1024;
const MAX_MESSAGE_SIZE = 48_000_000;
// mongod stops a batch near 16 MiB so the reply stays under maxBsonObjectSize.
const MAX_BATCH_BYTES = MAX_BSON_SIZE - 64 * 1024;
const DEFAULT_FIRST_BATCH = 101;
const HELLO_NAMES = new Set(['hello', 'ismaster', 'isMaster']);
const CODE_NAMES = new Map<number, string>([
  [1, 'InternalError'],
  [2, 'BadValue'],
  [13, 'Unauthorized'],
  [43, 'CursorNotFound'],
  [50, 'MaxTimeMSExpired'],
  [59, 'CommandNotFound'],
  [91, 'ShutdownInProgress'],
  [237, 'CursorKilled'],
  [10107, 'NotWritablePrimary'],
]);

class CommandError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** An in-memory server speaking just enough of the MongoDB wire protocol for the Node driver. */
export class MongoEmulator {
  readonly uri: string;
  private readonly collections = new Map<string, Doc[]>();
  private readonly cursors = new Map<bigint, Cursor>();
  private readonly log: RecordedCommand[] = [];
  private faults: ArmedFault[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly shutdown = new AbortController();
  private nextConnectionId = 1;
  // Above 2^32 so the driver must carry cursor ids as Int64, as it would against mongod.
  private nextCursorId = 7_000_000_000n;

  private constructor(private readonly server: Server) {
    const { port } = server.address() as AddressInfo;
    this.uri = `mongodb://127.0.0.1:${port}/?directConnection=true`;
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listens on an ephemeral port of 127.0.0.1. */
  static async start(): Promise<MongoEmulator> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new MongoEmulator(server);
  }

  /** Every command received so far, including handshakes and heartbeats. */
  get commands(): ReadonlyArray<RecordedCommand> {
    return this.log;
  }

  /** Inserts documents directly, normalised through BSON exactly like a wire insert. */
  seed(db: string, collection: string, docs: Record<string, unknown>[]): void {
    const target = this.collection(`${db}.${collection}`);
    for (const doc of docs) {
      target.push(BSON.deserialize(BSON.serialize(withId(doc)), { promoteValues: false }));
    }
  }

  /** Stored documents in insertion order; numbers stay Int32/Double/Long wrappers as sent. */
  documents(db: string, collection: string): Record<string, unknown>[] {
    return [...(this.collections.get(`${db}.${collection}`) ?? [])];
  }

  /** Arms a fault; faults are checked in injection order and the first applicable one wins. */
  inject(fault: MongoFault): void {
    this.faults.push({ fault, seen: 0, remaining: fault.times ?? Number.POSITIVE_INFINITY });
  }

  /** Disarms every fault. */
  clearFaults(): void {
    this.faults = [];
  }

  /** Stops listening and destroys open connections so no handle outlives the test. */
  async close(): Promise<void> {
    this.shutdown.abort();
    for (const socket of this.sockets) socket.destroy();
    this.cursors.clear();
    if (this.server.listening) {
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const connectionId = this.nextConnectionId++;
    let pending = Buffer.alloc(0);
    // One message at a time per connection, so a delayed reply is never overtaken.
    let chain = Promise.resolve();
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readInt32LE(0);
        if (length < 16 || length > MAX_MESSAGE_SIZE) {
          socket.destroy();
          return;
        }
        if (pending.length < length) return;
        const frame = pending.subarray(0, length);
        pending = pending.subarray(length);
        chain = chain
          .then(() => this.serve(socket, frame, connectionId))
          .catch(() => {
            socket.destroy();
          });
      }
    });
  }

  private async serve(socket: Socket, frame: Buffer, connectionId: number): Promise<void> {
    const requestId = frame.readInt32LE(4);
    const opCode = frame.readInt32LE(12);
    // No compressors are advertised, so any other opcode is a protocol violation.
    if (opCode !== OP_MSG && opCode !== OP_QUERY) throw new Error(`unsupported opCode ${opCode}`);
    const flags = opCode === OP_MSG ? frame.readUInt32LE(16) : 0;
    const command = opCode === OP_MSG ? parseOpMsg(frame, flags) : parseOpQuery(frame);
    this.log.push({ db: command.db, name: command.name, body: command.body });
    const reply = await this.answer(socket, command, connectionId);
    // moreToCome requests (w:0 writes such as endSessions) must not be answered.
    if (reply === undefined || flags & MORE_TO_COME || socket.destroyed) return;
    socket.write(opCode === OP_MSG ? opMsg(requestId, reply) : opReply(requestId, reply));
  }

  private async answer(
    socket: Socket,
    cmd: Command,
    connectionId: number,
  ): Promise<Doc | undefined> {
    const fault = this.pickFault(cmd.name);
    if (fault?.delayMs !== undefined) {
      const maxTimeMS = typeof cmd.body.maxTimeMS === 'number' ? cmd.body.maxTimeMS : 0;
      // mongod abandons a slow command at its own maxTimeMS instead of finishing it.
      const expires = maxTimeMS > 0 && maxTimeMS < fault.delayMs;
      const cursor = cmd.name === 'getMore' ? this.cursorFor(cmd.body.getMore) : undefined;
      // killCursors interrupts a getMore that is still running on that cursor, as on mongod.
      const signals = [this.shutdown.signal, ...(cursor ? [cursor.killed.signal] : [])];
      try {
        await sleep(expires ? maxTimeMS : fault.delayMs, undefined, {
          signal: AbortSignal.any(signals),
        });
      } catch {
        return this.shutdown.signal.aborted ? undefined : errorReply(237, 'cursor killed');
      }
      if (expires) return errorReply(50, 'operation exceeded time limit');
    }
    if (fault?.dropConnection) {
      socket.destroy();
      return undefined;
    }
    if (fault?.errorCode !== undefined) {
      return errorReply(fault.errorCode, fault.errmsg ?? `injected fault on ${cmd.name}`);
    }
    try {
      return this.execute(cmd, connectionId);
    } catch (error) {
      if (error instanceof CommandError) return errorReply(error.code, error.message);
      return errorReply(1, `emulator failure: ${String(error)}`);
    }
  }

  private pickFault(name: string): MongoFault | undefined {
    let chosen: MongoFault | undefined;
    for (const armed of this.faults) {
      if (canonicalName(armed.fault.command) !== canonicalName(name)) continue;
      armed.seen += 1;
      if (chosen !== undefined || armed.remaining <= 0) continue;
      if (armed.fault.nth !== undefined && armed.seen !== armed.fault.nth) continue;
      armed.remaining -= 1;
      chosen = armed.fault;
    }
    return chosen;
  }

  private execute({ db, name, body, raw }: Command, connectionId: number): Doc {
    const ns = `${db}.${String(body[name])}`;
    switch (name) {
      case 'hello':
      case 'ismaster':
      case 'isMaster':
        return {
          // Legacy spellings get the legacy field, as on mongod.
          [name === 'hello' ? 'isWritablePrimary' : 'ismaster']: true,
          helloOk: true,
          // No topologyVersion: the driver then polls instead of streaming exhaust hellos.
          maxBsonObjectSize: MAX_BSON_SIZE,
          maxMessageSizeBytes: MAX_MESSAGE_SIZE,
          maxWriteBatchSize: 100_000,
          localTime: new Date(),
          logicalSessionTimeoutMinutes: 30,
          connectionId,
          minWireVersion: 0,
          maxWireVersion: 21,
          readOnly: false,
          ok: 1,
        };
      case 'ping':
      case 'endSessions':
        return { ok: 1 };
      case 'buildInfo':
      case 'buildinfo':
        return { version: '7.0.0', versionArray: [7, 0, 0, 0], bits: 64, ok: 1 };
      case 'insert': {
        // Documents come from the unpromoted parse so Int32/Double/Long survive the round trip.
        const docs = asDocs(raw.documents).map(withId);
        this.collection(ns).push(...docs);
        return { n: docs.length, ok: 1 };
      }
      case 'find':
        return this.find(ns, body);
      case 'getMore':
        return this.getMore(db, body);
      case 'killCursors':
        return this.killCursors(body.cursors);
      case 'delete':
        return { n: this.remove(ns, asDocs(body.deletes)), ok: 1 };
      case 'drop':
        this.collections.delete(ns);
        return { nIndexesWas: 1, ns, ok: 1 };
      default:
        throw new CommandError(59, `no such command: '${name}'`);
    }
  }

  private find(ns: string, body: Doc): Doc {
    const filter = asDoc(body.filter);
    let docs = (this.collections.get(ns) ?? []).filter((doc) => matches(doc, filter));
    const sort = Object.entries(asDoc(body.sort));
    if (sort.length > 0) {
      docs = docs.toSorted((a, b) => {
        for (const [field, direction] of sort) {
          const order = compareValues(getPath(a, field), getPath(b, field));
          if (order !== 0) return direction === -1 ? -order : order;
        }
        return 0;
      });
    }
    const skip = typeof body.skip === 'number' ? body.skip : 0;
    const limit = typeof body.limit === 'number' ? Math.abs(body.limit) : 0;
    docs = docs.slice(skip, limit > 0 ? skip + limit : undefined);
    const projection = asDoc(body.projection);
    const cursor: Cursor = {
      ns,
      docs: docs.map((doc) => project(doc, projection)),
      position: 0,
      killed: new AbortController(),
    };
    const batchSize = typeof body.batchSize === 'number' ? body.batchSize : DEFAULT_FIRST_BATCH;
    const firstBatch = takeBatch(cursor, batchSize);
    let id = Long.ZERO;
    if (body.singleBatch !== true && cursor.position < cursor.docs.length) {
      const key = this.nextCursorId++;
      this.cursors.set(key, cursor);
      id = Long.fromBigInt(key);
    }
    return { cursor: { firstBatch, id, ns }, ok: 1 };
  }

  private getMore(db: string, body: Doc): Doc {
    const id = cursorId(body.getMore);
    const cursor = this.cursorFor(body.getMore);
    if (id === undefined || cursor === undefined) {
      throw new CommandError(43, `cursor id ${String(body.getMore)} not found`);
    }
    if (cursor.ns !== `${db}.${String(body.collection)}`) {
      throw new CommandError(13, `cursor ${id} belongs to ${cursor.ns}`);
    }
    const batchSize = typeof body.batchSize === 'number' && body.batchSize > 0 ? body.batchSize : 0;
    const nextBatch = takeBatch(cursor, batchSize || Number.POSITIVE_INFINITY);
    const open = cursor.position < cursor.docs.length;
    if (!open) this.cursors.delete(id);
    return {
      cursor: { nextBatch, id: open ? Long.fromBigInt(id) : Long.ZERO, ns: cursor.ns },
      ok: 1,
    };
  }

  private killCursors(ids: unknown): Doc {
    const cursorsKilled: Long[] = [];
    const cursorsNotFound: Long[] = [];
    for (const value of Array.isArray(ids) ? ids : []) {
      const id = cursorId(value);
      if (id === undefined) continue;
      this.cursors.get(id)?.killed.abort();
      (this.cursors.delete(id) ? cursorsKilled : cursorsNotFound).push(Long.fromBigInt(id));
    }
    return { cursorsKilled, cursorsNotFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
  }

  private remove(ns: string, statements: Doc[]): number {
    const docs = this.collections.get(ns) ?? [];
    const before = docs.length;
    for (const statement of statements) {
      const filter = asDoc(statement.q);
      // limit 1 is deleteOne; 0 means every match.
      let budget = statement.limit === 1 ? 1 : Number.POSITIVE_INFINITY;
      const kept = docs.filter((doc) => {
        if (budget <= 0 || !matches(doc, filter)) return true;
        budget -= 1;
        return false;
      });
      docs.splice(0, docs.length, ...kept);
    }
    return before - docs.length;
  }

  private cursorFor(value: unknown): Cursor | undefined {
    const id = cursorId(value);
    return id === undefined ? undefined : this.cursors.get(id);
  }

  private collection(ns: string): Doc[] {
    let docs = this.collections.get(ns);
    if (docs === undefined) {
      docs = [];
      this.collections.set(ns, docs);
    }
    return docs;
  }
}

function parseOpMsg(frame: Buffer, flags: number): Command {
  const end = flags & CHECKSUM_PRESENT ? frame.length - 4 : frame.length;
  let main: Buffer | undefined;
  const sequences = new Map<string, Buffer[]>();
  for (let offset = 20; offset < end; ) {
    const kind = frame[offset];
    const size = frame.readInt32LE(offset + 1);
    if (kind === 0) {
      main = frame.subarray(offset + 1, offset + 1 + size);
    } else if (kind === 1) {
      // Kind 1 (insert's documents): int32 size, cstring identifier, back-to-back BSON documents.
      const sectionEnd = offset + 1 + size;
      const nul = frame.indexOf(0, offset + 5);
      const docs: Buffer[] = [];
      for (let at = nul + 1; at < sectionEnd; at += frame.readInt32LE(at)) {
        docs.push(frame.subarray(at, at + frame.readInt32LE(at)));
      }
      sequences.set(frame.toString('utf8', offset + 5, nul), docs);
    } else {
      throw new Error(`unknown OP_MSG section kind ${String(kind)}`);
    }
    offset += 1 + size;
  }
  if (main === undefined) throw new Error('OP_MSG without a kind 0 section');
  const body = BSON.deserialize(main);
  const raw = BSON.deserialize(main, { promoteValues: false });
  for (const [field, docs] of sequences) {
    body[field] = docs.map((doc) => BSON.deserialize(doc));
    raw[field] = docs.map((doc) => BSON.deserialize(doc, { promoteValues: false }));
  }
  const db = typeof body.$db === 'string' ? body.$db : 'admin';
  return { db, name: Object.keys(body)[0] ?? '', body, raw };
}

function parseOpQuery(frame: Buffer): Command {
  // Only the pre-handshake hello arrives this way: flags, cstring namespace, skip, return, query.
  const nul = frame.indexOf(0, 20);
  const ns = frame.toString('utf8', 20, nul);
  const start = nul + 1 + 8;
  const query = frame.subarray(start, start + frame.readInt32LE(start));
  const body = BSON.deserialize(query);
  const raw = BSON.deserialize(query, { promoteValues: false });
  return { db: ns.slice(0, ns.indexOf('.')), name: Object.keys(body)[0] ?? '', body, raw };
}

function opMsg(responseTo: number, doc: Doc): Buffer {
  const bson = BSON.serialize(doc);
  const header = Buffer.alloc(21);
  header.writeInt32LE(header.length + bson.length, 0);
  header.writeInt32LE(responseTo, 8);
  header.writeInt32LE(OP_MSG, 12);
  // flagBits 0 and one kind 0 section: the driver rejects kind 1 sections in replies.
  return Buffer.concat([header, bson]);
}

function opReply(responseTo: number, doc: Doc): Buffer {
  const bson = BSON.serialize(doc);
  const header = Buffer.alloc(36);
  header.writeInt32LE(header.length + bson.length, 0);
  header.writeInt32LE(responseTo, 8);
  header.writeInt32LE(OP_REPLY, 12);
  header.writeInt32LE(1, 32);
  return Buffer.concat([header, bson]);
}

function errorReply(code: number, errmsg: string): Doc {
  // mongod names unmapped assertion codes Location<code>.
  return { ok: 0, errmsg, code, codeName: CODE_NAMES.get(code) ?? `Location${code}` };
}

function canonicalName(name: string): string {
  return HELLO_NAMES.has(name) ? 'hello' : name;
}

function takeBatch(cursor: Cursor, size: number): Doc[] {
  const batch: Doc[] = [];
  let bytes = 0;
  while (batch.length < size) {
    const doc = cursor.docs[cursor.position];
    if (doc === undefined) break;
    const docBytes = BSON.calculateObjectSize(doc);
    if (batch.length > 0 && bytes + docBytes > MAX_BATCH_BYTES) break;
    batch.push(doc);
    bytes += docBytes;
    cursor.position += 1;
  }
  return batch;
}

function project(doc: Doc, projection: Doc): Doc {
  const entries = Object.entries(projection);
  if (entries.length === 0) return doc;
  const isOn = (value: unknown): boolean => value !== 0 && value !== false;
  const inclusive = entries.some(([field, value]) => field !== '_id' && isOn(value));
  const keepId = !('_id' in projection) || isOn(projection._id);
  const out: Doc = {};
  for (const [field, value] of Object.entries(doc)) {
    const listed = field in projection;
    const keep = field === '_id' ? keepId : inclusive ? listed && isOn(projection[field]) : !listed;
    if (keep) out[field] = value;
  }
  return out;
}

function matches(doc: Doc, filter: Doc): boolean {
  return Object.entries(filter).every(([path, condition]) => {
    const value = getPath(doc, path);
    const operators = isPlainObject(condition) ? Object.entries(condition) : [];
    if (operators.length === 0 || !operators.every(([key]) => key.startsWith('$'))) {
      return equalsOrContains(value, condition);
    }
    return operators.every(([operator, argument]) => {
      if (operator === '$eq') return equalsOrContains(value, argument);
      if (operator === '$in' && Array.isArray(argument)) {
        return argument.some((item) => equalsOrContains(value, item));
      }
      throw new CommandError(2, `unsupported operator in emulator: ${operator}`);
    });
  });
}

function equalsOrContains(value: unknown, target: unknown): boolean {
  if (compareValues(value, target) === 0) return true;
  return Array.isArray(value) && value.some((item) => compareValues(item, target) === 0);
}

function getPath(doc: Doc, path: string): unknown {
  let current: unknown = doc;
  for (const part of path.split('.')) {
    if (!isPlainObject(current)) return undefined;
    current = current[part];
  }
  return current;
}

function canonical(value: unknown): unknown {
  // Stored documents keep Int32/Double/Long wrappers while queries arrive promoted to numbers.
  if (value instanceof Int32 || value instanceof Double) return value.valueOf();
  if (value instanceof Long) return value.toNumber();
  if (value instanceof Decimal128) return Number(value.toString());
  if (value === undefined) return null;
  return value;
}

function compareValues(left: unknown, right: unknown): number {
  const a = canonical(left);
  const b = canonical(right);
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  // ObjectIds, sub-documents and mixed types: serialized bytes stand in for mongod's ordering.
  return Buffer.compare(BSON.serialize({ v: a }), BSON.serialize({ v: b }));
}

function withId(doc: Doc): Doc {
  // A generated _id goes first, as on mongod.
  return '_id' in doc ? doc : { _id: new ObjectId(), ...doc };
}

function cursorId(value: unknown): bigint | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (value instanceof Long) return value.toBigInt();
  return undefined;
}

function isPlainObject(value: unknown): value is Doc {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function asDoc(value: unknown): Doc {
  return isPlainObject(value) ? value : {};
}

function asDocs(value: unknown): Doc[] {
  return Array.isArray(value) ? value.filter(isPlainObject) : [];
}
