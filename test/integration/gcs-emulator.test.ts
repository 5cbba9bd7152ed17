import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type File, Storage } from '@google-cloud/storage';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GcsEmulator } from '../emulators/gcs-emulator.js';

const BUCKET = 'profiles';

let emulator: GcsEmulator;
let storage: Storage;
let noRetry: Storage;

beforeAll(async () => {
  emulator = await GcsEmulator.start();
  emulator.createBucket(BUCKET);
  storage = new Storage({ apiEndpoint: emulator.baseUrl, projectId: 'test-project' });
  noRetry = new Storage({
    apiEndpoint: emulator.baseUrl,
    projectId: 'test-project',
    retryOptions: { autoRetry: false },
  });
});

afterEach(() => emulator.clearFaults());
afterAll(() => emulator.close());

/**
 * A client of its own: `save({resumable: false})` without ifGenerationMatch sets the shared
 * `storage.retryOptions.autoRetry = false` and never restores it. Retry delays are 1s + jitter
 * capped by maxRetryDelay, which must stay >= 1 (save's async-retry has a 1s minTimeout).
 */
function retryingClient(): Storage {
  const retryOptions = { maxRetryDelay: 1, totalTimeout: 5 };
  return new Storage({ apiEndpoint: emulator.baseUrl, projectId: 'test-project', retryOptions });
}

function file(name: string, client = storage): File {
  return client.bucket(BUCKET).file(name);
}

/** Requests recorded since `mark`, as `METHOD path?query`. */
function since(mark: number): string[] {
  return emulator.requests.slice(mark).map((r) => `${r.method} ${r.path}?${r.query}`);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** The `code` of the rejection (which is not always an Error instance). */
async function codeOf(p: Promise<unknown>): Promise<unknown> {
  const err: unknown = await p.then(
    () => 'resolved',
    (e: unknown) => e,
  );
  return typeof err === 'object' && err !== null && 'code' in err ? err.code : err;
}

describe('uploads', () => {
  it('save({resumable:false}) sends one multipart POST, without credentials', async () => {
    const mark = emulator.requests.length;
    await file('users/alice.json').save('{"a":1}', {
      resumable: false,
      contentType: 'application/json',
      metadata: { metadata: { owner: 'alice' } },
    });
    expect(since(mark)).toEqual([
      expect.stringMatching(/^POST \/upload\/storage\/v1\/b\/profiles\/o\?.*uploadType=multipart/),
    ]);
    expect(emulator.requests.at(-1)?.headers.has('authorization')).toBe(false);
    const stored = emulator.getObject(BUCKET, 'users/alice.json');
    expect(stored?.data.toString()).toBe('{"a":1}');
    expect(stored?.contentType).toBe('application/json');
    const [meta] = await file('users/alice.json').getMetadata();
    expect(meta.metadata).toEqual({ owner: 'alice' });
  });

  it('default save() is resumable: POST initiates, PUT to the session finalises', async () => {
    const mark = emulator.requests.length;
    await file('users/bob.json').save('{"b":2}', { contentType: 'application/json' });
    const sent = since(mark);
    expect(sent[0]).toMatch(/^POST \/upload\/storage\/v1\/b\/profiles\/o\?.*uploadType=resumable/);
    expect(sent[1]).toMatch(/^PUT \/upload\/storage\/v1\/b\/profiles\/o\?.*upload_id=/);
    // Single-request mode: unknown length on both ends, the body is the whole object.
    expect(emulator.requests.at(-1)?.headers.get('content-range')).toBe('bytes 0-*/*');
    // The resumable path uses gaxios directly, not the JSON client: no credentials there either.
    expect(emulator.requests.slice(mark).some((r) => r.headers.has('authorization'))).toBe(false);
    expect(emulator.getObject(BUCKET, 'users/bob.json')?.data.toString()).toBe('{"b":2}');
  });

  it('createWriteStream() sends a multi-MB stream in several resumable chunks', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 1234);
    const mark = emulator.requests.length;
    const source = Readable.from(
      Array.from({ length: 13 }, (_, i) => data.subarray(i * 256 * 1024, (i + 1) * 256 * 1024)),
    );
    await pipeline(source, file('big.bin').createWriteStream({ chunkSize: 1024 * 1024 }));
    const ranges = emulator.requests
      .slice(mark)
      .filter((r) => r.method === 'PUT')
      .map((r) => r.headers.get('content-range'));
    expect(ranges).toEqual([
      'bytes 0-1048575/*',
      'bytes 1048576-2097151/*',
      'bytes 2097152-3145727/*',
      `bytes 3145728-${data.length - 1}/${data.length}`,
    ]);
    expect(emulator.getObject(BUCKET, 'big.bin')?.data.equals(data)).toBe(true);
    const [downloaded] = await file('big.bin').download();
    expect(downloaded.equals(data)).toBe(true);
  });
});

describe('reads', () => {
  it('download() and createReadStream() return the stored bytes; ranges work', async () => {
    emulator.putObject(BUCKET, 'read/me.txt', 'hello, storage', 'text/plain');
    const [contents] = await file('read/me.txt').download();
    expect(contents.toString()).toBe('hello, storage');
    expect((await readAll(file('read/me.txt').createReadStream())).toString()).toBe(
      'hello, storage',
    );
    const part = await readAll(file('read/me.txt').createReadStream({ start: 7, end: 13 }));
    expect(part.toString()).toBe('storage');
  });

  it('getMetadata() carries numbers as strings and real hashes', async () => {
    const { generation } = emulator.putObject(BUCKET, 'meta.txt', 'abc', 'text/plain');
    const [meta] = await file('meta.txt').getMetadata();
    expect(meta).toMatchObject({
      name: 'meta.txt',
      bucket: BUCKET,
      generation,
      metageneration: '1',
      size: '3',
      contentType: 'text/plain',
      md5Hash: 'kAFQmDzST7DWlj99KOF/cg==',
      crc32c: 'Nks/tw==',
    });
    expect(typeof meta.timeCreated).toBe('string');
    const [exists] = await file('nope.txt').exists();
    expect(exists).toBe(false);
  });

  it('unknown buckets are 404', async () => {
    expect(await codeOf(storage.bucket('no-such-bucket').file('x').getMetadata())).toBe(404);
    const [exists] = await storage.bucket('no-such-bucket').exists();
    expect(exists).toBe(false);
  });

  it('buckets can be created and read through the API', async () => {
    const [bucket] = await storage.createBucket('made-by-client');
    const [meta] = await bucket.getMetadata();
    expect(meta.name).toBe('made-by-client');
    expect(await codeOf(storage.createBucket('made-by-client'))).toBe(409);
  });
});

describe('preconditions', () => {
  it('ifGenerationMatch: 0 on an existing object fails with 412 (multipart and resumable)', async () => {
    emulator.putObject(BUCKET, 'once.txt', 'first');
    const preconditionOpts = { ifGenerationMatch: 0 };
    const simple = file('once.txt').save('second', { resumable: false, preconditionOpts });
    const err: unknown = await simple.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 412, errors: [{ reason: 'conditionNotMet' }] });
    expect(await codeOf(file('once.txt').save('second', { preconditionOpts }))).toBe(412);
    expect(emulator.getObject(BUCKET, 'once.txt')?.data.toString()).toBe('first');
    // ...and succeeds when the object does not exist yet.
    await file('fresh.txt').save('new', { preconditionOpts });
    expect(emulator.getObject(BUCKET, 'fresh.txt')?.data.toString()).toBe('new');
  });

  it('ifGenerationMatch with the current generation succeeds; a stale one is 412', async () => {
    const { generation: stale } = emulator.putObject(BUCKET, 'cas.txt', 'v1');
    await file('cas.txt').save('v2', {
      resumable: false,
      preconditionOpts: { ifGenerationMatch: stale },
    });
    const current = emulator.getObject(BUCKET, 'cas.txt')?.generation;
    expect(Number(current)).toBeGreaterThan(Number(stale));
    const again = file('cas.txt').save('v3', { preconditionOpts: { ifGenerationMatch: stale } });
    expect(await codeOf(again)).toBe(412);
    await file('cas.txt').save('v3', { preconditionOpts: { ifGenerationMatch: current } });
    expect(emulator.getObject(BUCKET, 'cas.txt')?.data.toString()).toBe('v3');
  });

  it('resumable uploads re-check preconditions when they finalise', async () => {
    // Another writer lands between the initiating POST and the PUT carrying the bytes.
    emulator.inject({
      match: (r) => {
        if (r.method === 'PUT') emulator.putObject(BUCKET, 'race.txt', 'theirs');
        return false;
      },
    });
    const err: unknown = await file('race.txt')
      .save('mine', { preconditionOpts: { ifGenerationMatch: 0 } })
      .catch((e: unknown) => e);
    // The client rejects with the JSON error object itself here, not an Error instance.
    expect(err).not.toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 412, errors: [{ reason: 'conditionNotMet' }] });
    expect(emulator.getObject(BUCKET, 'race.txt')?.data.toString()).toBe('theirs');
  });

  it('preconditions apply to metadata reads and deletes', async () => {
    const { generation } = emulator.putObject(BUCKET, 'guarded.txt', 'x');
    expect(await codeOf(file('guarded.txt').getMetadata({ ifGenerationMatch: 1 }))).toBe(412);
    expect(await codeOf(file('guarded.txt').delete({ ifGenerationMatch: 1 }))).toBe(412);
    await file('guarded.txt').delete({ ifGenerationMatch: Number(generation) });
    expect(emulator.getObject(BUCKET, 'guarded.txt')).toBeUndefined();
  });
});

describe('STORAGE_EMULATOR_HOST', () => {
  it('JSON calls lose /storage/v1, uploads keep /upload/storage/v1: both work', async () => {
    process.env.STORAGE_EMULATOR_HOST = emulator.baseUrl;
    const viaEnv = new Storage({ projectId: 'test-project' });
    delete process.env.STORAGE_EMULATOR_HOST;
    const mark = emulator.requests.length;
    await viaEnv.bucket(BUCKET).file('env.txt').save('via env', { resumable: false });
    const [contents] = await viaEnv.bucket(BUCKET).file('env.txt').download();
    expect(contents.toString()).toBe('via env');
    expect(since(mark)).toEqual([
      expect.stringMatching(/^POST \/upload\/storage\/v1\/b\/profiles\/o\?/),
      'GET /b/profiles/o/env.txt?alt=media',
    ]);
  });
});

describe('delete and list', () => {
  it('delete() removes the object; deleting again is 404', async () => {
    emulator.putObject(BUCKET, 'gone.txt', 'bye');
    await file('gone.txt').delete();
    expect(emulator.listObjectNames(BUCKET)).not.toContain('gone.txt');
    expect(await codeOf(file('gone.txt').delete())).toBe(404);
  });

  it('getFiles() filters by prefix and pages in lexical order', async () => {
    const names = ['list/e', 'list/a', 'list/c', 'list/d', 'list/b', 'list/sub/x', 'other'];
    for (const name of names) emulator.putObject(BUCKET, name, name);
    const seen: string[] = [];
    let query: object | null = { prefix: 'list/', maxResults: 2, autoPaginate: false };
    let pages = 0;
    while (query !== null) {
      const [files, next]: [File[], object | null, unknown] = await storage
        .bucket(BUCKET)
        .getFiles(query);
      seen.push(...files.map((f) => f.name));
      query = next;
      pages += 1;
    }
    expect(seen).toEqual(['list/a', 'list/b', 'list/c', 'list/d', 'list/e', 'list/sub/x']);
    expect(pages).toBe(3);
    const [all] = await storage.bucket(BUCKET).getFiles({ prefix: 'list/' });
    expect(all.map((f) => f.name)).toEqual(seen);
    const [top, , raw] = await storage
      .bucket(BUCKET)
      .getFiles({ prefix: 'list/', delimiter: '/', autoPaginate: false });
    expect(top.map((f) => f.name)).toEqual(['list/a', 'list/b', 'list/c', 'list/d', 'list/e']);
    expect(raw).toMatchObject({ prefixes: ['list/sub/'] });
  });
});

describe('faults', () => {
  it('a 503 is retried by the client; without retries it surfaces as err.code 503', async () => {
    emulator.putObject(BUCKET, 'flaky.txt', 'ok');
    const isMeta = (r: { method: string; path: string }) => r.path.endsWith('/o/flaky.txt');
    emulator.inject({ match: isMeta, status: 503, times: 1 });
    const mark = emulator.requests.length;
    const [meta] = await file('flaky.txt', retryingClient()).getMetadata();
    expect(meta.size).toBe('2');
    expect(since(mark)).toHaveLength(2);
    emulator.inject({ match: isMeta, status: 503 });
    expect(await codeOf(file('flaky.txt', noRetry).getMetadata())).toBe(503);
  });

  it('a failed resumable chunk is resumed after a status query (only with ifGenerationMatch)', async () => {
    const data = randomBytes(600 * 1024);
    let puts = 0;
    emulator.inject({ match: (r) => r.method === 'PUT' && ++puts === 2, status: 503, times: 1 });
    const mark = emulator.requests.length;
    // Uploads are retried only when idempotent, i.e. with an ifGenerationMatch precondition.
    await file('resumed.bin', retryingClient()).save(data, {
      chunkSize: 256 * 1024,
      preconditionOpts: { ifGenerationMatch: 0 },
    });
    const ranges = emulator.requests
      .slice(mark)
      .filter((r) => r.method === 'PUT')
      .map((r) => r.headers.get('content-range'));
    expect(ranges).toEqual([
      'bytes 0-262143/*',
      'bytes 262144-524287/*',
      'bytes */*',
      'bytes 262144-524287/*',
      `bytes 524288-${data.length - 1}/${data.length}`,
    ]);
    expect(emulator.getObject(BUCKET, 'resumed.bin')?.data.equals(data)).toBe(true);
  });

  it('a delay holds the answer back; the client `timeout` option does not cut it short', async () => {
    emulator.putObject(BUCKET, 'slow.txt', 'zzz');
    emulator.inject({ delayMs: 300, times: 1 });
    // teeny-request hands `timeout` to node-fetch 3, which ignores it: bound calls yourself.
    const impatient = new Storage({ apiEndpoint: emulator.baseUrl, timeout: 50 });
    const started = Date.now();
    await file('slow.txt', impatient).getMetadata();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('a dropped connection fails the call, or is retried when retries are on', async () => {
    emulator.putObject(BUCKET, 'dropped.txt', 'x');
    emulator.inject({ dropConnection: true, times: 1 });
    expect(await codeOf(file('dropped.txt', noRetry).getMetadata())).toBe('ECONNRESET');
    emulator.inject({ dropConnection: true, times: 1 });
    const mark = emulator.requests.length;
    const [meta] = await file('dropped.txt', retryingClient()).getMetadata();
    expect(since(mark)).toHaveLength(2);
    expect(meta.name).toBe('dropped.txt');
  });

  it('a truncated download is detected', async () => {
    emulator.putObject(BUCKET, 'cut.bin', randomBytes(64 * 1024));
    emulator.inject({ truncateBodyAt: 1000, times: 1 });
    await expect(file('cut.bin').download()).rejects.toThrow();
    emulator.inject({ truncateBodyAt: 1000, times: 1 });
    await expect(readAll(file('cut.bin').createReadStream())).rejects.toThrow();
  });

  it('a corrupted download fails the checksum check', async () => {
    emulator.putObject(BUCKET, 'rot.bin', randomBytes(4096));
    emulator.inject({ corruptBody: true, times: 1 });
    expect(await codeOf(file('rot.bin').download())).toBe('CONTENT_DOWNLOAD_MISMATCH');
    emulator.inject({ corruptBody: true, times: 1 });
    expect(await codeOf(readAll(file('rot.bin').createReadStream()))).toBe(
      'CONTENT_DOWNLOAD_MISMATCH',
    );
  });

  it('unimplemented calls get 501 and are recorded', async () => {
    emulator.putObject(BUCKET, 'patch.txt', 'x');
    const mark = emulator.requests.length;
    expect(await codeOf(file('patch.txt').setMetadata({ metadata: { a: 'b' } }))).toBe(501);
    expect(await codeOf(file('patch.txt').copy('patch-copy.txt'))).toBe(501);
    expect(since(mark)).toEqual([
      expect.stringMatching(/^PATCH \/storage\/v1\/b\/profiles\/o\/patch\.txt\?/),
      expect.stringMatching(/^POST \/storage\/v1\/b\/profiles\/o\/patch\.txt\/rewriteTo\//),
    ]);
  });
});
