import { Agent, request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoSamples } from '../../shared/demo/demo-dataset.js';
import { type DemoProfileServer, serveDemoProfile } from '../helpers/demo-profile-server.js';

// Property-based fuzzing of the profile function through the real functions-framework server:
// whatever arrives (ids, parameters, methods, headers, bodies, broken %-encodings), it never
// answers 5xx, never crashes, and every answer with a body is JSON.
// Out of reach of any function code, so not generated: requests Node's HTTP parser itself
// rejects (unknown methods, raw spaces, bodies without a length), header names Node's client
// cannot send (`__proto__`), and the framework's own /favicon.ico and /robots.txt
// (IGNORED_ROUTES='' turns those off in deployments).
let server: DemoProfileServer;
let port: number;
let samples: DemoSamples;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<Answer> {
  // Node's client frames GET/DELETE/OPTIONS bodies only with an explicit length.
  const framed =
    body === undefined
      ? headers
      : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, headers: framed, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

const hex = fc.constantFrom(...'0123456789abcdefABCDEF');
/** A %-sequence that is valid, truncated, or not hex at all. */
const percent = fc.oneof(
  fc.tuple(hex, hex).map(([a, b]) => `%${a}${b}`),
  fc.constantFrom('%', '%E0%A4%A', '%C3', '%ZZ', '%%', '%u00e9', '%00', '%FF%FE'),
);
/** Text as it may appear in a URL: safe characters, encoded characters and raw %-sequences. */
const urlText = fc
  .array(
    fc.oneof(
      fc.string({ maxLength: 6 }).map((s) => encodeURIComponent(s)),
      fc.stringMatching(/^[A-Za-z0-9._~!$'()*,;:@/-]{0,8}$/),
      percent,
    ),
    { maxLength: 5 },
  )
  .map((parts) => parts.join(''));

const registryIds = (s: DemoSamples) => [s.linked, s.orphan, s.superNode, s.noProfile];
const idValue = fc.oneof(
  urlText,
  fc.constantFrom(
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    '',
    '1234567890',
    'x'.repeat(200),
  ),
  fc.constant('SAMPLE'),
);
const param = fc.tuple(
  fc.oneof(
    fc.constantFrom(
      'id',
      'id',
      'id',
      'type',
      'id[]',
      'id[a]',
      'type[]',
      '__proto__',
      'constructor',
      'id.x',
    ),
    urlText,
  ),
  fc.oneof(idValue, fc.constantFrom('id_type_1', 'id_type_2', 'id_type_9', '')),
  fc.boolean(),
);
const path = fc.oneof(
  { weight: 6, arbitrary: fc.constant('/') },
  fc.constantFrom(
    '/health',
    '/openapi.json',
    '/health/',
    '//',
    '/profiles',
    '/%',
    '/a%ZZb',
    '/%E0%A4%A',
    '/..%2f',
  ),
  urlText.map((t) => `/${t.replace(/^\/+/, '')}`),
);
const headerName = fc.oneof(
  fc.constantFrom(
    'content-type',
    'content-encoding',
    'accept',
    'accept-encoding',
    'x-api-key',
    'traceparent',
    'x-cloud-trace-context',
    'x-forwarded-for',
    'user-agent',
    'cookie',
  ),
  fc.stringMatching(/^x-[a-z0-9-]{1,12}$/),
);
const headerValue = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-16',
    'application/json; charset=nope',
    'application/cloudevents+json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/octet-stream',
    'multipart/form-data; boundary=x',
    'gzip',
    'deflate',
    'br',
    'identity, gzip',
    'zstd',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '0123456789abcdef0123456789abcdef/123;o=1',
    'not-a-trace',
  ),
  fc.stringMatching(/^[\x21-\x7e]{0,40}$/),
);
const requestArb = fc.record({
  method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
  path,
  params: fc.array(param, { maxLength: 5 }),
  headers: fc.dictionary(headerName, headerValue, { maxKeys: 4 }),
  body: fc.option(
    fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.constantFrom(
        '{"id":"x"}',
        '{bad json',
        '[]',
        'id=1&id[a]=2',
        '\u0000\u00ff',
        'x'.repeat(20_000),
      ),
    ),
    { nil: undefined },
  ),
});

beforeAll(async () => {
  server = await serveDemoProfile({
    seed: 11,
    persons: 300,
    segments: 50,
    orphanProfiles: 10,
    superNodeIds: 60,
  });
  samples = server.samples;
  port = Number(new URL(server.url).port);
  expect((await send('GET', `/?id=${samples.linked}`, {})).status).toBe(200); // snapshots loaded
});

afterAll(async () => {
  agent.destroy();
  await server.close();
});

describe('fuzzing the profile function over HTTP', () => {
  it('never answers 5xx, never crashes, always answers JSON (10,000 requests)', async () => {
    const known = registryIds(samples);
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requestArb, fc.nat(known.length - 1), async (r, pick) => {
        const query = r.params
          .map(([name, value, bare]) => {
            const v = value === 'SAMPLE' ? (known[pick] as string) : value;
            return bare ? name : `${name}=${v}`;
          })
          .join('&');
        const target = query ? `${r.path}?${query}` : r.path;
        // Node's client drops the length of a HEAD body, which would desynchronise the connection.
        const answer = await send(
          r.method,
          target,
          r.headers,
          r.method === 'HEAD' ? undefined : r.body,
        );
        seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1);
        expect(answer.status, `${r.method} ${target}`).toBeLessThan(500);
        if (r.method === 'HEAD') return;
        expect(answer.headers['content-type'], `${r.method} ${target}`).toBe(
          'application/json; charset=utf-8',
        );
        const body = JSON.parse(answer.body) as Record<string, unknown>;
        if (answer.status >= 400) {
          expect(Object.keys(body)).toEqual(['error']);
          const error = body.error as Record<string, unknown>;
          expect(Object.keys(error).sort()).toEqual(['code', 'message']);
          expect(answer.body).not.toMatch(/\n\s+at /); // no stack trace
        }
      }),
      { numRuns: 10_000 },
    );
    // The generator reaches the interesting answers, not only one kind of rejection.
    for (const status of [200, 400, 404, 405]) expect(seen.get(status) ?? 0).toBeGreaterThan(50);
    expect((await send('GET', '/health', {})).status).toBe(200);
  }, 240_000);

  it.each([
    [
      'a body over the limit',
      'POST',
      { 'content-type': 'application/json' },
      'x'.repeat(70_000),
      413,
      'request_too_large',
    ],
    [
      'a gzip body that is not gzip',
      'POST',
      { 'content-encoding': 'gzip', 'content-type': 'application/json' },
      'plain',
      400,
      'invalid_request',
    ],
    [
      'an unknown content encoding',
      'POST',
      { 'content-encoding': 'x-unknown', 'content-type': 'application/json' },
      'x',
      415,
      'unsupported_media_type',
    ],
    ['malformed JSON', 'POST', { 'content-type': 'application/json' }, '{bad', 400, 'invalid_json'],
    ['a path with a broken %-encoding', 'GET', {}, undefined, 400, 'invalid_path'],
  ])('answers %s in JSON', async (_what, method, headers, body, status, code) => {
    const target = code === 'invalid_path' ? '/%E0%A4%A?id=1' : '/profiles:batchGet';
    const answer = await send(method, target, headers as Record<string, string>, body);
    expect(answer.status).toBe(status);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code } });
  });

  it('answers random batch calls with one result per id, never 5xx, always JSON (2,000 calls)', async () => {
    const known = registryIds(samples);
    const item = fc.oneof(
      { weight: 4, arbitrary: fc.record({ id: fc.constantFrom(...known) }) },
      fc.record({
        id: fc.constantFrom(...known),
        type: fc.constantFrom('id_type_1', 'id_type_2', 'id_type_9', ''),
      }),
      fc.record({
        id: fc.oneof(
          fc.string({ maxLength: 20 }),
          fc.constantFrom('__proto__', '', 'x'.repeat(200), '1234567890'),
        ),
      }),
      fc.constantFrom(null, 5, 'x', [], { id: 5 }, { id: 'x', extra: 1 }, { type: 'id_type_1' }),
    );
    const body = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.array(item, { maxLength: 120 }).map((ids) => JSON.stringify({ ids })),
      },
      fc.constantFrom(
        '{}',
        '[]',
        'null',
        '{"ids":{}}',
        '{"ids":[],"x":1}',
        '{"ids":"x"}',
        '{bad',
        '',
      ),
      fc.string({ maxLength: 50 }),
    );
    const query = fc.constantFrom(
      '',
      '?fields=segments',
      '?segmentFields=id,name',
      '?segmentTypes=interest',
      '?view=flat',
      '?fields=nope',
      '?segmentFields=nope',
      '?view=flat&fields=attributes',
    );
    const contentType = fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/octet-stream',
    );
    const encoding = fc.constantFrom('identity', 'gzip', 'deflate');
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(body, query, contentType, encoding, async (text, q, type, enc) => {
        const { gzipSync, deflateSync } = await import('node:zlib');
        const raw = Buffer.from(text);
        const payload = enc === 'gzip' ? gzipSync(raw) : enc === 'deflate' ? deflateSync(raw) : raw;
        const headers = {
          'content-type': type,
          ...(enc === 'identity' ? {} : { 'content-encoding': enc }),
        };
        const answer = await send('POST', `/profiles:batchGet${q}`, headers, payload);
        seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1);
        expect(answer.status, text.slice(0, 200)).toBeLessThan(500);
        expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
        const parsed = JSON.parse(answer.body) as { results?: { status: number }[] };
        if (answer.status === 200) {
          const asked = (JSON.parse(text) as { ids: unknown[] }).ids;
          expect(parsed.results).toHaveLength(asked.length);
          for (const r of parsed.results ?? []) expect([200, 400, 404]).toContain(r.status);
        }
      }),
      { numRuns: 2_000 },
    );
    for (const status of [200, 400, 415]) expect(seen.get(status) ?? 0).toBeGreaterThan(20);
  }, 240_000);

  it('keeps a gzip bomb under the body limit', async () => {
    const { gzipSync } = await import('node:zlib');
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024)); // 50 MB of zeros, ~50 KB on the wire
    const answer = await send(
      'POST',
      '/profiles:batchGet',
      { 'content-encoding': 'gzip', 'content-type': 'application/json' },
      bomb,
    );
    expect(answer.status).toBe(413);
    expect(process.memoryUsage().rss).toBeLessThan(2 * 1024 * 1024 * 1024);
  });
});
