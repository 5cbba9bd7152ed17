/**
 * In-memory stand-in for the Cloud Storage JSON API, enough for @google-cloud/storage 8.x.
 *
 * Point the client at it with `new Storage({ apiEndpoint: emulator.baseUrl, projectId })`: with a
 * custom endpoint the client skips google-auth-library entirely (no token fetch, no Authorization
 * header) unless `useAuthWithCustomEndpoint: true` is set, so no credentials are needed.
 * Paths are accepted with and without `/storage/v1` (STORAGE_EMULATOR_HOST drops it for JSON
 * calls) and under `/upload/storage/v1` and `/download/storage/v1`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CRC32C } from '@google-cloud/storage';

/** A misbehaviour, applied once the request body is read (a faulted upload never lands). */
export interface GcsFault {
  /** Which requests it applies to; default all. */
  match?: (req: { method: string; path: string; query: URLSearchParams }) => boolean;
  status?: number;
  delayMs?: number;
  dropConnection?: boolean;
  truncateBodyAt?: number;
  corruptBody?: boolean;
  times?: number;
}

/** One request as received; `path` is the pathname as sent (object names still percent-encoded). */
export interface GcsRequestRecord {
  method: string;
  path: string;
  query: string;
  /** Lower-cased names, e.g. to check Content-Range or that no Authorization was sent. */
  headers: ReadonlyMap<string, string>;
}

interface StoredObject {
  bucket: string;
  name: string;
  data: Buffer;
  generation: string;
  metageneration: string;
  contentType: string;
  metadata: Map<string, string> | undefined;
  /** RFC 3339; GCS lets it move forward only (lifecycle rules read it). */
  customTime?: string;
  md5Hash: string;
  crc32c: string;
  created: string;
}

type Target = Pick<StoredObject, 'bucket' | 'name' | 'contentType' | 'metadata'>;

interface Session extends Target {
  // Preconditions ride on the initiating POST only; GCS re-checks them when the upload finalises.
  query: URLSearchParams;
  chunks: Buffer[];
  received: number;
  result?: StoredObject;
}

interface Reply {
  status: number;
  headers?: Record<string, string | number>;
  body?: Buffer | object;
  truncateAt?: number;
}

interface Ctx {
  method: string;
  url: URL;
  q: URLSearchParams;
  headers: Map<string, string>;
  body: Buffer;
  truncateAt?: number;
  corrupt?: boolean;
}

const REASONS = new Map([
  [400, 'invalid'],
  [404, 'notFound'],
  [409, 'conflict'],
  [412, 'conditionNotMet'],
  [416, 'requestedRangeNotSatisfiable'],
  [429, 'rateLimitExceeded'],
  [501, 'notImplemented'],
]);

/** In-memory GCS JSON API server on 127.0.0.1 with an ephemeral port. */
export class GcsEmulator {
  readonly baseUrl: string;
  private readonly buckets = new Map<
    string,
    { created: string; objects: Map<string, StoredObject> }
  >();
  private readonly sessions = new Map<string, Session>();
  private readonly faults: { fault: GcsFault; remaining: number }[] = [];
  private readonly log: GcsRequestRecord[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly closing = new AbortController();
  // Microsecond-like start so generations look like real ones; then strictly increasing.
  private lastGeneration = Date.now() * 1000;

  private constructor(
    private readonly server: Server,
    port: number,
  ) {
    this.baseUrl = `http://127.0.0.1:${port}`;
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (res.headersSent || this.closing.signal.aborted) res.destroy();
        else send(res, failure(500, String(err)));
      });
    });
  }

  /** Starts a server on an ephemeral port of 127.0.0.1. */
  static async start(): Promise<GcsEmulator> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return new GcsEmulator(server, address.port);
  }

  /** Every request received so far, in arrival order. */
  get requests(): ReadonlyArray<GcsRequestRecord> {
    return this.log;
  }

  /** Creates a bucket; a no-op when it already exists. */
  createBucket(name: string): void {
    if (!this.buckets.has(name)) {
      this.buckets.set(name, { created: new Date().toISOString(), objects: new Map() });
    }
  }

  /** Stores an object directly as a new generation. */
  putObject(
    bucket: string,
    name: string,
    data: Buffer | string,
    contentType = 'application/octet-stream',
  ): { generation: string } {
    const target = { bucket, name, contentType, metadata: undefined };
    return { generation: this.store(target, Buffer.from(data)).generation };
  }

  /** The live generation of an object, if any. */
  getObject(
    bucket: string,
    name: string,
  ):
    | {
        data: Buffer;
        generation: string;
        metageneration: string;
        contentType: string;
        customTime: string | undefined;
      }
    | undefined {
    const o = this.buckets.get(bucket)?.objects.get(name);
    if (o === undefined) return undefined;
    const { data, generation, metageneration, contentType, customTime } = o;
    return { data, generation, metageneration, contentType, customTime };
  }

  /** Object names in a bucket, sorted. */
  listObjectNames(bucket: string): string[] {
    return [...(this.buckets.get(bucket)?.objects.keys() ?? [])].sort();
  }

  /** Adds a fault; one with only body effects (truncate/corrupt) skips non-download requests. */
  inject(fault: GcsFault): void {
    this.faults.push({ fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
  }

  /** Removes all faults. */
  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Stops listening and destroys open sockets so no handle outlives the test. */
  async close(): Promise<void> {
    this.closing.abort();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', this.baseUrl);
    const headers = new Map<string, string>();
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    }
    this.log.push({ method, path: url.pathname, query: url.search.slice(1), headers });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(Buffer.from(chunk));
    const ctx: Ctx = { method, url, q: url.searchParams, headers, body: Buffer.concat(chunks) };
    const isMedia = method === 'GET' && ctx.q.get('alt') === 'media';
    for (const slot of this.faults) {
      const f = slot.fault;
      if (
        slot.remaining <= 0 ||
        (f.match && !f.match({ method, path: url.pathname, query: ctx.q }))
      ) {
        continue;
      }
      if (f.status === undefined && !f.dropConnection && f.delayMs === undefined && !isMedia)
        continue;
      slot.remaining -= 1;
      if (f.delayMs !== undefined)
        await sleep(f.delayMs, undefined, { signal: this.closing.signal });
      if (f.dropConnection) {
        req.socket.destroy();
        return;
      }
      if (f.status !== undefined) return send(res, failure(f.status, 'Injected fault.'));
      ctx.truncateAt = f.truncateBodyAt ?? ctx.truncateAt;
      ctx.corrupt = f.corruptBody || ctx.corrupt;
    }
    send(res, this.route(ctx));
  }

  private route(ctx: Ctx): Reply {
    const { method, q } = ctx;
    const path = ctx.url.pathname.replace(/^\/((upload|download)\/)?storage\/v1(?=\/)/, '');
    // Names come percent-encoded, so a further `/` means a sub-resource (acl, rewriteTo...).
    const m = /^\/b(?:\/([^/]+)(?:\/(o)(?:\/([^/]+))?)?)?(\/.+)?$/.exec(path);
    const unsupported = failure(501, `Not implemented: ${method} ${ctx.url.pathname}`);
    if (m === null || m[4] !== undefined) return unsupported;
    const [, rawBucket, objectPart, rawName] = m;
    if (rawBucket === undefined) return method === 'POST' ? this.insertBucket(ctx) : unsupported;
    const bucket = decodeURIComponent(rawBucket);
    const objects = this.buckets.get(bucket)?.objects;
    if (objects === undefined) return failure(404, 'The specified bucket does not exist.');
    if (objectPart === undefined)
      return method === 'GET' ? json(this.bucketResource(bucket)) : unsupported;
    if (rawName === undefined) {
      const uploadType = q.get('uploadType');
      const uploadId = q.get('upload_id');
      if (method === 'GET') return json(this.list(objects, q));
      if (method === 'PUT' && uploadId !== null) return this.putChunk(ctx, uploadId);
      if (method === 'POST' && uploadType === 'resumable') return this.startResumable(ctx, bucket);
      if (method === 'POST' && (uploadType === 'multipart' || uploadType === 'media')) {
        return this.simpleUpload(ctx, bucket, uploadType);
      }
      return unsupported;
    }
    const name = decodeURIComponent(rawName);
    const current = objects.get(name);
    const wanted = q.get('generation');
    if (current === undefined || (wanted !== null && wanted !== current.generation)) {
      return failure(404, `No such object: ${bucket}/${name}`);
    }
    const failed = preconditionFailure(current, q);
    // GCS answers a failed *NotMatch on reads with 304 Not Modified, everything else with 412.
    if (failed !== undefined)
      return failure(method === 'GET' && failed.includes('NotMatch') ? 304 : 412, failed);
    if (method === 'GET' && q.get('alt') === 'media') return media(ctx, current);
    if (method === 'GET') return json(this.objectResource(current));
    if (method === 'PATCH') return this.patch(ctx, current);
    if (method !== 'DELETE') return unsupported;
    objects.delete(name);
    return { status: 204 };
  }

  /** objects.patch: only customTime is supported, with GCS's rule that it cannot go back. */
  private patch(ctx: Ctx, current: StoredObject): Reply {
    let body: unknown;
    try {
      body = JSON.parse(ctx.body.toString('utf8') || '{}');
    } catch {
      return failure(400, 'Malformed JSON.');
    }
    const customTime = (body as { customTime?: unknown }).customTime;
    if (typeof customTime !== 'string' || Number.isNaN(Date.parse(customTime))) {
      return failure(501, 'Only customTime can be patched here.');
    }
    if (
      current.customTime !== undefined &&
      Date.parse(customTime) < Date.parse(current.customTime)
    ) {
      return failure(400, 'Custom time cannot be decreased.');
    }
    current.customTime = new Date(customTime).toISOString();
    current.metageneration = String(Number(current.metageneration) + 1);
    return json(this.objectResource(current));
  }

  private insertBucket(ctx: Ctx): Reply {
    const name = parseMeta(ctx.body)?.name;
    if (name === undefined) return failure(400, 'Bucket name is required.');
    if (this.buckets.has(name)) return failure(409, 'The bucket already exists.');
    this.createBucket(name);
    return json(this.bucketResource(name));
  }

  private simpleUpload(ctx: Ctx, bucket: string, uploadType: 'multipart' | 'media'): Reply {
    let parts: { meta: Buffer; data: Buffer; contentType?: string } | undefined = {
      meta: Buffer.alloc(0),
      data: ctx.body,
      contentType: ctx.headers.get('content-type'),
    };
    if (uploadType === 'multipart')
      parts = parseMultipart(ctx.body, ctx.headers.get('content-type'));
    const meta = parts && parseMeta(parts.meta);
    if (parts === undefined || meta === undefined) return failure(400, 'Malformed multipart body.');
    const name = ctx.q.get('name') ?? meta.name;
    if (name === undefined) return failure(400, 'Object name is required.');
    const contentType = meta.contentType ?? parts.contentType ?? 'application/octet-stream';
    const target = { bucket, name, contentType, metadata: meta.metadata };
    return this.finish(ctx, target, ctx.q, parts.data);
  }

  private startResumable(ctx: Ctx, bucket: string): Reply {
    const meta = parseMeta(ctx.body);
    if (meta === undefined) return failure(400, 'Malformed metadata.');
    const name = ctx.q.get('name') ?? meta.name;
    if (name === undefined) return failure(400, 'Object name is required.');
    const failed = preconditionFailure(this.buckets.get(bucket)?.objects.get(name), ctx.q);
    if (failed !== undefined) return failure(412, failed);
    // The client moves contentType out of the metadata body into X-Upload-Content-Type.
    const contentType =
      ctx.headers.get('x-upload-content-type') ?? meta.contentType ?? 'application/octet-stream';
    const id = randomUUID();
    const session = {
      bucket,
      name,
      contentType,
      metadata: meta.metadata,
      query: ctx.q,
      chunks: [],
      received: 0,
    };
    this.sessions.set(id, session);
    const location = new URL(`/upload/storage/v1/b/${encodeURIComponent(bucket)}/o`, this.baseUrl);
    location.search = `uploadType=resumable&upload_id=${id}`;
    return { status: 200, headers: { Location: location.toString() } };
  }

  private putChunk(ctx: Ctx, id: string): Reply {
    const s = this.sessions.get(id);
    if (s === undefined) return failure(404, 'No such upload session.');
    if (s.result !== undefined) return json(this.objectResource(s.result));
    const range = ctx.headers.get('content-range');
    const query = range === undefined ? null : /^bytes \*\/(\d+|\*)$/.exec(range);
    const chunk = range === undefined ? null : /^bytes (\d+)-(\d+|\*)\/(\d+|\*)$/.exec(range);
    let final = range === undefined;
    if (query !== null) {
      final = query[1] !== '*' && Number(query[1]) === s.received;
    } else if (range === undefined || chunk !== null) {
      const start = chunk === null ? 0 : Number(chunk[1]);
      if (start > s.received) return failure(400, `Chunk starts at ${start}, have ${s.received}.`);
      // A resent overlap is skipped: only bytes past what we already hold count.
      const fresh = ctx.body.subarray(s.received - start);
      s.chunks.push(fresh);
      s.received += fresh.length;
      // `bytes N-*/*` is the client's single-request mode: the body is the whole rest.
      if (chunk !== null)
        final = chunk[3] === '*' ? chunk[2] === '*' : s.received >= Number(chunk[3]);
    } else {
      return failure(400, `Bad Content-Range: ${range}`);
    }
    if (!final)
      return { status: 308, headers: s.received > 0 ? { Range: `bytes=0-${s.received - 1}` } : {} };
    const reply = this.finish(ctx, s, s.query, Buffer.concat(s.chunks));
    if (reply.status === 200) s.result = this.buckets.get(s.bucket)?.objects.get(s.name);
    return reply;
  }

  private finish(ctx: Ctx, target: Target, q: URLSearchParams, data: Buffer): Reply {
    const current = this.buckets.get(target.bucket)?.objects.get(target.name);
    const failed = preconditionFailure(current, q);
    if (failed !== undefined) return failure(412, failed);
    // The client sends X-Goog-Hash with the last chunk; GCS rejects the upload on a mismatch.
    const hashes = digests(data);
    for (const pair of (ctx.headers.get('x-goog-hash') ?? '').split(',')) {
      const [kind, value] = [
        pair.slice(0, pair.indexOf('=')).trim(),
        pair.slice(pair.indexOf('=') + 1),
      ];
      const ours = kind === 'crc32c' ? hashes.crc32c : kind === 'md5' ? hashes.md5Hash : value;
      if (ours !== value) return failure(400, `Provided ${kind} does not match the data.`);
    }
    return json(this.objectResource(this.store(target, data)));
  }

  private store(target: Target, data: Buffer): StoredObject {
    const objects = this.buckets.get(target.bucket)?.objects;
    if (objects === undefined) throw new Error(`no bucket ${target.bucket}`);
    this.lastGeneration += 1;
    const generation = String(this.lastGeneration);
    const created = new Date().toISOString();
    const stored = { ...target, ...digests(data), data, generation, metageneration: '1', created };
    objects.set(target.name, stored);
    return stored;
  }

  private list(objects: Map<string, StoredObject>, q: URLSearchParams): object {
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const max = Math.min(1000, Math.max(1, Number(q.get('maxResults') ?? 1000) || 1000));
    const after = Buffer.from(q.get('pageToken') ?? '', 'base64url').toString('utf8');
    // Items and collapsed prefixes page together in one lexical order, keyed by name or prefix.
    const entries: { key: string; item?: StoredObject }[] = [];
    for (const name of [...objects.keys()].sort()) {
      if (!name.startsWith(prefix)) continue;
      const cut = delimiter === '' ? -1 : name.indexOf(delimiter, prefix.length);
      const key = cut < 0 ? name : name.slice(0, cut + delimiter.length);
      if (key <= after || entries.at(-1)?.key === key) continue;
      entries.push(cut < 0 ? { key, item: objects.get(name) } : { key });
    }
    const page = entries.slice(0, max);
    const items = page.flatMap((e) => (e.item ? [this.objectResource(e.item)] : []));
    const prefixes = page.filter((e) => e.item === undefined).map((e) => e.key);
    const last = page.at(-1);
    // Like GCS, empty `items`/`prefixes` are left out rather than sent as [].
    return {
      kind: 'storage#objects',
      ...(items.length > 0 && { items }),
      ...(prefixes.length > 0 && { prefixes }),
      ...(entries.length > max &&
        last && { nextPageToken: Buffer.from(last.key).toString('base64url') }),
    };
  }

  private bucketResource(name: string): object {
    const created = this.buckets.get(name)?.created;
    return {
      kind: 'storage#bucket',
      id: name,
      name,
      projectNumber: '0',
      metageneration: '1',
      location: 'US',
      storageClass: 'STANDARD',
      timeCreated: created,
      updated: created,
    };
  }

  private objectResource(o: StoredObject): object {
    const path = `b/${encodeURIComponent(o.bucket)}/o/${encodeURIComponent(o.name)}`;
    // All numbers are strings, as GCS sends them.
    return {
      kind: 'storage#object',
      id: `${o.bucket}/${o.name}/${o.generation}`,
      selfLink: `${this.baseUrl}/storage/v1/${path}`,
      mediaLink: `${this.baseUrl}/download/storage/v1/${path}?generation=${o.generation}&alt=media`,
      name: o.name,
      bucket: o.bucket,
      generation: o.generation,
      metageneration: o.metageneration,
      contentType: o.contentType,
      storageClass: 'STANDARD',
      size: String(o.data.length),
      md5Hash: o.md5Hash,
      crc32c: o.crc32c,
      etag: etagOf(o),
      timeCreated: o.created,
      updated: o.created,
      ...(o.metadata && { metadata: Object.fromEntries(o.metadata) }),
      ...(o.customTime && { customTime: o.customTime }),
    };
  }
}

function digests(data: Buffer): { md5Hash: string; crc32c: string } {
  const crc = new CRC32C();
  crc.update(data);
  return { md5Hash: createHash('md5').update(data).digest('base64'), crc32c: crc.toString() };
}

function etagOf(o: StoredObject): string {
  return Buffer.from(`${o.generation}/${o.metageneration}`).toString('base64');
}

function preconditionFailure(
  current: StoredObject | undefined,
  q: URLSearchParams,
): string | undefined {
  // A missing object counts as generation 0, so ifGenerationMatch=0 means "must not exist".
  const generation = current?.generation ?? '0';
  const checks: [string, boolean][] = [
    ['ifGenerationMatch', q.get('ifGenerationMatch') === generation],
    ['ifGenerationNotMatch', q.get('ifGenerationNotMatch') !== generation],
    ['ifMetagenerationMatch', q.get('ifMetagenerationMatch') === current?.metageneration],
    ['ifMetagenerationNotMatch', q.get('ifMetagenerationNotMatch') !== current?.metageneration],
  ];
  const failed = checks.find(([param, holds]) => q.has(param) && !holds)?.[0];
  return failed && `At least one of the pre-conditions you specified did not hold: ${failed}.`;
}

function media(ctx: Ctx, o: StoredObject): Reply {
  const size = o.data.length;
  const headers: Record<string, string | number> = {
    'Content-Type': o.contentType,
    ETag: etagOf(o),
    'Accept-Ranges': 'bytes',
    'x-goog-hash': `crc32c=${o.crc32c},md5=${o.md5Hash}`,
    'x-goog-generation': o.generation,
    'x-goog-metageneration': o.metageneration,
    'x-goog-stored-content-encoding': 'identity',
    'x-goog-stored-content-length': size,
  };
  const range = ctx.headers.get('range');
  let [start, end] = [0, size - 1];
  if (range !== undefined) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range);
    if (m === null || (m[1] === '' && m[2] === '')) return failure(400, `Bad Range: ${range}`);
    if (m[1] === '') start = Math.max(0, size - Number(m[2]));
    else [start, end] = [Number(m[1]), m[2] === '' ? end : Math.min(end, Number(m[2]))];
    if (start > end)
      return {
        ...failure(416, 'Range not satisfiable.'),
        headers: { 'Content-Range': `bytes */${size}` },
      };
    headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  }
  const body = Buffer.from(o.data.subarray(start, end + 1));
  // Flipping one byte is enough to break both hashes while the headers keep the stored ones.
  if (ctx.corrupt && body.length > 0) body.writeUInt8((body[0] ?? 0) ^ 0xff, 0);
  return { status: range === undefined ? 200 : 206, headers, body, truncateAt: ctx.truncateAt };
}

function parseMultipart(
  body: Buffer,
  contentType = '',
): { meta: Buffer; data: Buffer; contentType?: string } | undefined {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (boundary === undefined) return undefined;
  const parts: { head: string; body: Buffer }[] = [];
  let pos = body.indexOf(`--${boundary}`);
  while (pos >= 0 && parts.length < 2) {
    const start = body.indexOf('\r\n', pos) + 2;
    const next = body.indexOf(`\r\n--${boundary}`, start);
    const split = body.indexOf('\r\n\r\n', start);
    if (start < 2 || next < 0 || split < 0 || split > next) return undefined;
    parts.push({
      head: body.subarray(start, split).toString('latin1'),
      body: body.subarray(split + 4, next),
    });
    pos = next + 2;
  }
  const [meta, data] = parts;
  if (meta === undefined || data === undefined) return undefined;
  const type = /^content-type:\s*(.+)$/im.exec(data.head)?.[1]?.trim();
  return { meta: meta.body, data: data.body, ...(type && { contentType: type }) };
}

function parseMeta(
  raw: Buffer,
): { name?: string; contentType?: string; metadata?: Map<string, string> } | undefined {
  let value: unknown = {};
  try {
    if (raw.length > 0) value = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const fields = new Map<string, unknown>(Object.entries(value));
  const [name, contentType, custom] = ['name', 'contentType', 'metadata'].map((k) => fields.get(k));
  const entries: [string, unknown][] =
    typeof custom === 'object' && custom !== null ? Object.entries(custom) : [];
  return {
    ...(typeof name === 'string' && { name }),
    ...(typeof contentType === 'string' && { contentType }),
    // null values mean "remove this key" in GCS, so they are never stored.
    ...(entries.length > 0 && {
      metadata: new Map(entries.filter(([, v]) => v !== null).map(([k, v]) => [k, String(v)])),
    }),
  };
}

function json(body: object): Reply {
  return { status: 200, body };
}

function failure(status: number, message: string): Reply {
  if (status === 304) return { status };
  const reason = REASONS.get(status) ?? 'backendError';
  return {
    status,
    body: { error: { code: status, message, errors: [{ message, domain: 'global', reason }] } },
  };
}

function send(res: ServerResponse, r: Reply): void {
  const isJson = r.body !== undefined && !Buffer.isBuffer(r.body);
  const body = Buffer.isBuffer(r.body) ? r.body : Buffer.from(isJson ? JSON.stringify(r.body) : '');
  const type = isJson ? { 'Content-Type': 'application/json; charset=UTF-8' } : {};
  res.writeHead(r.status, { ...type, ...r.headers, 'Content-Length': body.length });
  // Truncation keeps the real Content-Length, then cuts the socket like a dying connection.
  if (r.truncateAt === undefined || r.truncateAt >= body.length) res.end(body);
  else res.write(body.subarray(0, r.truncateAt), () => res.destroy());
}
