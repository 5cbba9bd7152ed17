import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS_TIMEOUT_MS, MAX_URL_CHARS } from '../../shared/http/harden-framework.js';
import { type DemoProfileServer, serveDemoProfile } from '../helpers/demo-profile-server.js';

// Requests crafted to cost the service more than they should, on the profile function as
// deployed (functions-framework, hardened), with API keys required.
const KEY = 'caller-key-0123456789';
let server: DemoProfileServer;
let host: string;
let port: number;

beforeAll(async () => {
  process.env.API_KEYS = KEY;
  server = await serveDemoProfile({
    seed: 5,
    persons: 200,
    segments: 40,
    orphanProfiles: 10,
    superNodeIds: 30,
  });
  // The first lookup waits for the snapshots' first load.
  const first = await fetch(`${server.url}/?id=${server.samples.linked}`, {
    headers: { 'x-api-key': KEY },
  });
  expect(first.status).toBe(200);
  const url = new URL(server.url);
  host = url.hostname;
  port = Number(url.port);
});

afterAll(async () => {
  await server.close();
  delete process.env.API_KEYS;
});

interface RawAnswer {
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** Whether the server closed the connection after answering. */
  readonly closed: boolean;
}

/**
 * Writes `parts` to a fresh connection (each after the previous is flushed), then reads until
 * the server has answered and closed, or `waitMs` passed (then whatever came, if anything).
 */
function raw(parts: readonly (string | Buffer)[], waitMs = 20_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    const chunks: Buffer[] = [];
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0),
        head,
        body: split < 0 ? '' : text.slice(split + 4),
        closed,
      });
      socket.destroy();
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      closed = true;
      done();
    });
    socket.on('close', () => {
      closed = true;
      done();
    });
    socket.on('error', reject);
    socket.on('connect', () => {
      for (const part of parts) socket.write(part);
    });
  });
}

const request = (method: string, path: string, headers: Record<string, string>, body = '') =>
  `${method} ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}${body ? `content-length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body}`;

describe('crafted requests', () => {
  it('reads no body before the key check, nor anywhere but the batch route', async () => {
    // Not gzip at all: a parser that read it would answer 400 before any key was checked.
    const notGzip = {
      'content-encoding': 'gzip',
      'content-type': 'application/x-www-form-urlencoded',
    };
    const noKey = await raw([request('GET', '/health', notGzip, 'a[b][c][d]=1&a[b][c][e]=2')]);
    expect(noKey.status).toBe(401);
    expect(JSON.parse(noKey.body)).toMatchObject({ error: { code: 'unauthorized' } });
    const withKey = await raw([
      request('GET', '/health', { ...notGzip, 'x-api-key': KEY }, 'a[b][c][d]=1'),
    ]);
    expect(withKey.status).toBe(200);
    const batchNoKey = await raw([
      request(
        'POST',
        '/profiles:batchGet',
        { ...notGzip, 'content-type': 'application/json' },
        'x',
      ),
    ]);
    expect(batchNoKey.status).toBe(401);
    // With the key, the batch route reads it: then the encoding is refused.
    const batch = await raw([
      request(
        'POST',
        '/profiles:batchGet',
        { ...notGzip, 'content-type': 'application/json', 'x-api-key': KEY },
        'x',
      ),
    ]);
    expect(batch.status).toBe(400);
    expect(JSON.parse(batch.body)).toMatchObject({ error: { code: 'invalid_request' } });
  });

  it('answers a batch body sent too slowly with 408 in JSON within the budget, and closes', async () => {
    const head =
      `POST /profiles:batchGet HTTP/1.1\r\nhost: x\r\nx-api-key: ${KEY}\r\n` +
      'content-type: application/json\r\ncontent-length: 1000\r\n\r\n{"ids": [';
    const answer = await raw([head]);
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'request_timeout' } });
    expect(answer.closed).toBe(true);
  });

  it('answers headers sent too slowly with 408 in JSON (HEADERS_TIMEOUT_MS), and closes', async () => {
    const answer = await raw(['GET /health HTTP/1.1\r\nhost: x\r\n'], HEADERS_TIMEOUT_MS * 4);
    expect(answer.status).toBe(408);
    expect(answer.head).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'request_timeout' } });
    expect(answer.closed).toBe(true);
  }, 30_000);

  it('answers an unknown Expect with 417 in JSON', async () => {
    const answer = await raw([request('GET', '/health', { 'x-api-key': KEY, expect: 'tea' })]);
    expect(answer.status).toBe(417);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'expectation_failed' } });
  });

  it('answers malformed HTTP in JSON', async () => {
    const answer = await raw(['GET /health HTTP/1.1\r\nbad header line\r\n\r\n']);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'bad_request' } });
  });

  it('answers a path of only slashes as the root, and trailing slashes as the path', async () => {
    const res = await fetch(`${server.url}//?id=${server.samples.linked}`, {
      headers: { 'x-api-key': KEY },
    });
    expect(res.status).toBe(200);
    const plain = await fetch(`${server.url}/?id=${server.samples.linked}`, {
      headers: { 'x-api-key': KEY },
    });
    expect(await res.text()).toBe(await plain.text());
    expect((await fetch(`${server.url}/health///`, { headers: { 'x-api-key': KEY } })).status).toBe(
      200,
    );
  });

  it('answers 414 in JSON to a URL over MAX_URL_CHARS, before any route is matched', async () => {
    const answer = await raw([
      request('GET', `/${'/'.repeat(MAX_URL_CHARS)}a`, { 'x-api-key': KEY }),
    ]);
    expect(answer.status).toBe(414);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'uri_too_long' } });
  });

  it('keeps a gzip bomb sent to the batch route under the body limit', async () => {
    const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024));
    const res = await fetch(`${server.url}/profiles:batchGet`, {
      method: 'POST',
      headers: { 'x-api-key': KEY, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: bomb,
    });
    expect(res.status).toBe(413);
  });
});
