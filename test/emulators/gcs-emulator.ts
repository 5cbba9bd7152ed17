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

/**
 * A misbehaviour, applied once the request body is read (a faulted upload never lands), except
 * `commitThenDrop` (applied after the request took effect) and `hangBeforeBody` (before the body).
 */
export interface GcsFault {
  /** Which requests it applies to; default all. */
  match?: (req: { method: string; path: string; query: URLSearchParams }) => boolean;
  status?: number;
  delayMs?: number;
  dropConnection?: boolean;
  truncateBodyAt?: number;
  corruptBody?: boolean;
  /**
   * Carries the request out (an upload becomes the live generation, a PATCH or DELETE applies),
   * then destroys the connection without a reply: the write GCS committed after the client gave up.
   */
  commitThenDrop?: boolean;
  /**
   * Stops reading the request body and never answers until `close()`: a stalled upload whose
   * client writes back up. The fault's other effects are ignored.
   */
  hangBeforeBody?: boolean;
  /** How many matching requests it applies to; default all. */
  times?: number;
}

/** Lifecycle rule conditions modelled here; names and formats as in the bucket's JSON resource. */
export interface LifecycleCondition {
  /** Days since timeCreated: met once that many times 24h have passed. */
  age?: number;
  /** `YYYY-MM-DD`: created before 00:00 UTC of that date. */
  createdBefore?: string;
  /** `YYYY-MM-DD`: customTime before 00:00 UTC of that date; objects without one never match. */
  customTimeBefore?: string;
  /** Days since customTime, counted like `age`; objects without customTime never match. */
  daysSinceCustomTime?: number;
  /** No versioning here: every object is live. */
  isLive?: boolean;
  matchesPrefix?: string[];
  matchesSuffix?: string[];
}

/** One rule: its conditions are ANDed; only the `Delete` action is modelled. */
export interface LifecycleRule {
  action: { type: string; storageClass?: string };
  condition: LifecycleCondition;
}

/** A bucket's lifecycle configuration, as `gcloud storage buckets update --lifecycle-file` sets it. */
export interface Lifecycle {
  rule: LifecycleRule[];
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

interface StoredBucket {
  created: string;
  updated: string;
  metageneration: number;
  lifecycle?: Lifecycle;
  objects: Map<string, StoredObject>;
}

type Target = Pick<StoredObject, 'bucket' | 'name' | 'contentType' | 'metadata' | 'customTime'>;

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

const DAY_MS = 24 * 60 * 60 * 1000;

// Conditions GCS has but this server does not model: configuring one is answered 501, not ignored.
const UNMODELLED_CONDITIONS = new Set([
  'daysSinceNoncurrentTime',
  'matchesPattern',
  'matchesStorageClass',
  'noncurrentTimeBefore',
  'numNewerVersions',
]);

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
  private readonly buckets = new Map<string, StoredBucket>();
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
      const created = new Date().toISOString();
      this.buckets.set(name, { created, updated: created, metageneration: 1, objects: new Map() });
    }
  }

  /** Replaces a bucket's lifecycle rules; throws on what GCS rejects or this server lacks. */
  setLifecycle(bucket: string, lifecycle: Lifecycle): void {
    this.bucketOrThrow(bucket).lifecycle = checkLifecycle(lifecycle);
  }

  /**
   * Deletes the objects the bucket's rules match at `at` and returns their names, sorted. Real
   * GCS acts asynchronously, up to a day after a rule is met: `at` is the earliest it may.
   */
  runLifecycle(bucket: string, at: Date): string[] {
    const b = this.bucketOrThrow(bucket);
    const rules = b.lifecycle?.rule ?? [];
    const doomed = [...b.objects.values()]
      .filter((o) => rules.some((r) => conditionHolds(r.condition, o, at.getTime())))
      .map((o) => o.name);
    for (const name of doomed) b.objects.delete(name);
    return doomed.sort();
  }

  /** Sets an object's timeCreated, so tests can pretend it is older. */
  backdate(bucket: string, name: string, created: Date): void {
    const o = this.bucketOrThrow(bucket).objects.get(name);
    if (o === undefined) throw new Error(`no object ${bucket}/${name}`);
    o.created = created.toISOString();
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
    // Leaving the body unread lets the socket buffers fill, so the client's writes stall; the
    // socket goes when close() destroys it.
    if (this.take((f) => f.hangBeforeBody === true, method, url)) return;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(Buffer.from(chunk));
    const ctx: Ctx = { method, url, q: url.searchParams, headers, body: Buffer.concat(chunks) };
    const isMedia = method === 'GET' && ctx.q.get('alt') === 'media';
    let dropAfterCommit = false;
    for (const slot of this.faults) {
      const f = slot.fault;
      if (
        slot.remaining <= 0 ||
        f.hangBeforeBody ||
        (f.match && !f.match({ method, path: url.pathname, query: ctx.q }))
      ) {
        continue;
      }
      const acts = f.status !== undefined || f.dropConnection || f.delayMs !== undefined;
      if (!acts && !f.commitThenDrop && !isMedia) continue;
      slot.remaining -= 1;
      if (f.delayMs !== undefined)
        await sleep(f.delayMs, undefined, { signal: this.closing.signal });
      if (f.dropConnection) {
        req.socket.destroy();
        return;
      }
      if (f.status !== undefined) return send(res, failure(f.status, 'Injected fault.'));
      dropAfterCommit ||= f.commitThenDrop === true;
      ctx.truncateAt = f.truncateBodyAt ?? ctx.truncateAt;
      ctx.corrupt = f.corruptBody || ctx.corrupt;
    }
    const reply = this.route(ctx);
    if (dropAfterCommit) req.socket.destroy();
    else send(res, reply);
  }

  /** Uses up one application of the first live fault that `kind` selects and that matches. */
  private take(kind: (f: GcsFault) => boolean, method: string, url: URL): boolean {
    const slot = this.faults.find(
      ({ fault: f, remaining }) =>
        remaining > 0 &&
        kind(f) &&
        (f.match === undefined || f.match({ method, path: url.pathname, query: url.searchParams })),
    );
    if (slot !== undefined) slot.remaining -= 1;
    return slot !== undefined;
  }

  private bucketOrThrow(name: string): StoredBucket {
    const b = this.buckets.get(name);
    if (b === undefined) throw new Error(`no bucket ${name}`);
    return b;
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
    if (objectPart === undefined) {
      if (method === 'GET') return json(this.bucketResource(bucket));
      return method === 'PATCH' ? this.patchBucket(ctx, bucket) : unsupported;
    }
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
    const fields = jsonFields(ctx.body);
    if (fields === undefined) return failure(400, 'Malformed JSON.');
    if (fields.size !== 1 || !fields.has('customTime')) {
      return failure(501, 'Only customTime can be patched here.');
    }
    const customTime = fields.get('customTime');
    // GCS keeps customTime when a patch sets it to null: it cannot be removed (a live probe,
    // floci-io/floci-gcp#184; the docs only say "cannot be removed").
    if (customTime !== null) {
      if (typeof customTime !== 'string' || Number.isNaN(Date.parse(customTime))) {
        return failure(400, 'Invalid customTime.');
      }
      if (
        current.customTime !== undefined &&
        Date.parse(customTime) < Date.parse(current.customTime)
      ) {
        return failure(400, 'Custom time cannot be decreased.');
      }
      current.customTime = new Date(customTime).toISOString();
    }
    current.metageneration = String(Number(current.metageneration) + 1);
    return json(this.objectResource(current));
  }

  /** buckets.patch: only `lifecycle` (a rules object, or null to remove them). */
  private patchBucket(ctx: Ctx, bucket: string): Reply {
    const fields = jsonFields(ctx.body);
    const b = this.buckets.get(bucket);
    if (fields === undefined || b === undefined) return failure(400, 'Malformed JSON.');
    if (fields.size !== 1 || !fields.has('lifecycle')) {
      return failure(501, 'Only lifecycle can be patched on a bucket here.');
    }
    const lifecycle = fields.get('lifecycle');
    try {
      b.lifecycle = lifecycle === null ? undefined : checkLifecycle(lifecycle);
    } catch (err) {
      if (err instanceof LifecycleConfigError) return failure(err.status, err.message);
      throw err;
    }
    b.metageneration += 1;
    b.updated = new Date().toISOString();
    return json(this.bucketResource(bucket));
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
    const { metadata, customTime } = meta;
    const target = { bucket, name, contentType, metadata, customTime };
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
      customTime: meta.customTime,
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
    const b = this.buckets.get(name);
    return {
      kind: 'storage#bucket',
      id: name,
      name,
      projectNumber: '0',
      metageneration: String(b?.metageneration ?? 1),
      location: 'US',
      storageClass: 'STANDARD',
      timeCreated: b?.created,
      updated: b?.updated,
      ...(b?.lifecycle && { lifecycle: structuredClone(b.lifecycle) }),
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

/** A lifecycle configuration GCS would reject (400), or one this server does not model (501). */
class LifecycleConfigError extends Error {
  override readonly name = 'LifecycleConfigError';
  constructor(
    readonly status: 400 | 501,
    message: string,
  ) {
    super(message);
  }
}

/** Validates a lifecycle configuration and returns a private copy of it. */
function checkLifecycle(value: unknown): Lifecycle {
  const invalid = (message: string) => new LifecycleConfigError(400, message);
  const rules = isRecord(value) ? value.rule : undefined;
  if (!Array.isArray(rules)) throw invalid('lifecycle.rule must be a list of rules.');
  for (const [i, rule] of rules.entries()) {
    const at = `lifecycle.rule[${i}]`;
    if (!isRecord(rule) || !isRecord(rule.action) || !isRecord(rule.condition)) {
      throw invalid(`${at} needs an action and a condition.`);
    }
    const type = rule.action.type;
    if (type !== 'Delete') {
      // SetStorageClass and AbortIncompleteMultipartUpload exist in GCS; nothing here uses them.
      throw new LifecycleConfigError(501, `${at}: action ${String(type)} is not supported here.`);
    }
    const condition = Object.entries(rule.condition);
    // Without conditions a rule would delete every object: refused here (not checked on GCS).
    if (condition.length === 0) throw invalid(`${at} has no condition.`);
    for (const [key, v] of condition) checkCondition(`${at}.condition.${key}`, key, v);
  }
  return structuredClone({ rule: rules as LifecycleRule[] });
}

function checkCondition(at: string, key: string, v: unknown): void {
  const ok = (() => {
    switch (key) {
      case 'age':
      case 'daysSinceCustomTime':
        return Number.isInteger(v) && typeof v === 'number' && v >= 0;
      case 'createdBefore':
      case 'customTimeBefore':
        return typeof v === 'string' && dateStart(v) !== undefined;
      case 'isLive':
        return typeof v === 'boolean';
      case 'matchesPrefix':
      case 'matchesSuffix':
        return Array.isArray(v) && v.every((s) => typeof s === 'string');
      default:
        if (UNMODELLED_CONDITIONS.has(key)) {
          throw new LifecycleConfigError(501, `${at}: condition not supported here.`);
        }
        throw new LifecycleConfigError(400, `${at}: unknown condition.`);
    }
  })();
  if (!ok) throw new LifecycleConfigError(400, `${at}: invalid value ${JSON.stringify(v)}.`);
}

/** Whether all of a rule's conditions hold for `o` at `at` (ms since the epoch). */
function conditionHolds(c: LifecycleCondition, o: StoredObject, at: number): boolean {
  const created = Date.parse(o.created);
  const custom = o.customTime === undefined ? undefined : Date.parse(o.customTime);
  const before = (t: number | undefined, date: string | undefined) =>
    date === undefined || (t !== undefined && t < (dateStart(date) ?? Number.NaN));
  // "N days old" means N * 24h after the timestamp, to the millisecond (GCS's own example:
  // created 2019/01/10 10:00 UTC, age 10 -> met on and after 2019/01/20 10:00 UTC).
  const aged = (t: number | undefined, days: number | undefined) =>
    days === undefined || (t !== undefined && at >= t + days * DAY_MS);
  return (
    aged(created, c.age) &&
    aged(custom, c.daysSinceCustomTime) &&
    before(created, c.createdBefore) &&
    before(custom, c.customTimeBefore) &&
    (c.isLive === undefined || c.isLive) &&
    (c.matchesPrefix === undefined || c.matchesPrefix.some((p) => o.name.startsWith(p))) &&
    (c.matchesSuffix === undefined || c.matchesSuffix.some((s) => o.name.endsWith(s)))
  );
}

/** 00:00 UTC of a `YYYY-MM-DD` date, or undefined when it is not one. */
function dateStart(date: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return undefined;
  const t = Date.parse(`${date}T00:00:00Z`);
  // Date.parse rolls 2024-02-30 over; a real date prints back as itself.
  return !Number.isNaN(t) && new Date(t).toISOString().startsWith(date) ? t : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON object body's fields; undefined when the body is not a JSON object. */
function jsonFields(raw: Buffer): Map<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw.toString('utf8') || '{}');
    return isRecord(value) ? new Map(Object.entries(value)) : undefined;
  } catch {
    return undefined;
  }
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
):
  | { name?: string; contentType?: string; metadata?: Map<string, string>; customTime?: string }
  | undefined {
  const fields = jsonFields(raw);
  if (fields === undefined) return undefined;
  const [name, contentType, custom, customTime] = [
    'name',
    'contentType',
    'metadata',
    'customTime',
  ].map((k) => fields.get(k));
  const entries: [string, unknown][] =
    typeof custom === 'object' && custom !== null ? Object.entries(custom) : [];
  const time = typeof customTime === 'string' ? Date.parse(customTime) : undefined;
  // An unparsable customTime fails the upload, as on GCS.
  if (customTime !== undefined && customTime !== null && !Number.isFinite(time)) return undefined;
  return {
    ...(typeof name === 'string' && { name }),
    ...(typeof contentType === 'string' && { contentType }),
    ...(time !== undefined && { customTime: new Date(time).toISOString() }),
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
