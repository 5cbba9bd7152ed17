import { connect } from 'node:net';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoSamples } from '../../shared/demo/demo-dataset.js';
import { type DemoProfileServer, serveDemoProfile } from '../helpers/demo-profile-server.js';
import { orderedKeys } from '../helpers/ordered-keys.js';

// The profile function as deployed: registered with functions-framework, configured by env,
// reading the demo data through the local snapshot store and the embedded profile store.
let server: DemoProfileServer;
let base: string;
let samples: DemoSamples;

beforeAll(async () => {
  server = await serveDemoProfile({
    seed: 3,
    persons: 500,
    segments: 80,
    orphanProfiles: 20,
    superNodeIds: 60,
  });
  ({ url: base, samples } = server);
});

afterAll(() => server.close());

describe('profile over HTTP (functions-framework)', () => {
  it('answers a linked id with every profile, segments resolved, metadata in headers', async () => {
    const res = await fetch(`${base}/?id=${samples.linked}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('x-catalog-version')).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    expect(res.headers.get('x-mapping-version')).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    expect(res.headers.get('server-timing')).toContain('store;dur=');
    const text = await res.text();
    const keys = orderedKeys(text);
    expect(keys[0]).toBe(samples.linked);
    expect(keys.length).toBeGreaterThanOrEqual(3);
    expect(Number(res.headers.get('x-linked-ids-total'))).toBe(keys.length - 1);
    const body = JSON.parse(text) as Record<
      string,
      { found: boolean; segments: { id: string; name: string; size: number }[] }
    >;
    const first = body[samples.linked];
    expect(first?.found).toBe(true);
    expect(first?.segments.length).toBeGreaterThan(0);
    for (const s of first?.segments ?? []) {
      expect(s).toMatchObject({
        id: expect.any(String),
        name: expect.any(String),
        size: expect.any(Number),
      });
    }
  });

  it('caps a super-node and says so', async () => {
    const res = await fetch(`${base}/?id=${samples.superNode}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-linked-ids-truncated')).toBe('true');
    expect(res.headers.get('x-linked-ids-total')).toBe('60');
    expect(orderedKeys(await res.text())).toHaveLength(51);
  });

  it('answers an id with a profile but no mapping entry', async () => {
    const res = await fetch(`${base}/?id=${samples.orphan.toUpperCase()}`);
    expect(res.status).toBe(200);
    expect(orderedKeys(await res.text())).toEqual([samples.orphan]);
  });

  it('answers HEAD with the headers and no body', async () => {
    const res = await fetch(`${base}/?id=${samples.linked}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(0);
    expect(await res.text()).toBe('');
  });

  it('answers many concurrent slow and dropped connections, each whole (smoke test)', async () => {
    // A smoke test through the real server: answers of several sizes to connections that stall
    // or drop must each arrive whole and unmixed. It is not the guard against reusing a pooled
    // buffer too early (local sockets take these answers whole, so releasing at res.end() would
    // pass here); that guard is test/unit/pooled-answers.test.ts.
    const paths = [
      `/?id=${samples.linked}`,
      `/?id=${samples.superNode}`,
      `/?id=${samples.orphan}`,
      `/?id=${samples.linked}&segmentFields=id`,
      `/?id=${samples.superNode}&view=flat`,
      `/?id=${samples.linked}&fields=attributes`,
    ];
    const expected = new Map<string, string>();
    for (const path of paths) expected.set(path, await (await fetch(`${base}${path}`)).text());
    const url = new URL(base);
    // A raw connection that sends the request and reads nothing for `delayMs`, then reads the
    // whole answer or drops the connection unread.
    const read = (path: string, delayMs: number, drop: boolean) =>
      new Promise<string | undefined>((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname);
        const chunks: Buffer[] = [];
        socket.pause();
        socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        setTimeout(() => {
          if (drop) {
            socket.destroy();
            resolve(undefined);
            return;
          }
          socket.on('data', (chunk: Buffer) => chunks.push(chunk));
          socket.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            resolve(text.slice(text.indexOf('\r\n\r\n') + 4));
          });
          socket.resume();
        }, delayMs);
        socket.on('error', (err) => (drop ? resolve(undefined) : reject(err)));
      });
    for (let wave = 0; wave < 3; wave++) {
      const calls = Array.from({ length: 48 }, (_, i) => {
        const path = paths[i % paths.length] as string;
        const drop = i % 7 === 3;
        return read(path, 50 + ((i * 13) % 150), drop).then((body) => ({ path, body, drop }));
      });
      for (const { path, body, drop } of await Promise.all(calls)) {
        if (!drop) expect(body, path).toBe(expected.get(path));
      }
    }
  });

  it.each([
    ['/', 400, 'missing_id'],
    ['/?id=', 400, 'empty_id'],
    ['/?id=a&id=b', 400, 'repeated_parameter'],
    [`/?id=${'9'.repeat(300)}`, 400, 'id_too_long'],
    ['/?id=%FF', 400, 'invalid_query'],
    ['/?id=x%00y', 400, 'malformed_id'],
    ['/?id=1234567890&type=nope', 400, 'unknown_type'],
    ['/?id=00000000-0000-4000-8000-000000000000', 404, 'unknown_id'],
    ['/?id=__proto__', 404, 'unknown_id'],
    ['/?id=constructor', 404, 'unknown_id'],
    ['/nope', 404, 'not_found'],
  ])('GET %s -> %i %s', async (path, status, code) => {
    const res = await fetch(`${base}${path}`);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toMatchObject({ error: { code, message: expect.any(String) } });
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH'])('%s -> 405 JSON with Allow', async (method) => {
    const res = await fetch(`${base}/?id=${samples.linked}`, {
      method,
      body: '{"id":"x"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect(await res.json()).toMatchObject({ error: { code: 'method_not_allowed' } });
  });

  it('reports health with both snapshot versions and the store', async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: 'ok',
      snapshots: {
        catalog: { loaded: true, version: expect.any(String), rows: 80 },
        mapping: { loaded: true, version: expect.any(String) },
      },
      store: { name: 'embedded', ok: true },
    });
  });
});

describe('GET /openapi.json', () => {
  async function validator() {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            parameters?: { name: string; schema: { enum?: string[] } }[];
            responses: Record<string, { headers?: Record<string, unknown> }>;
          }
        >
      >;
    };
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addSchema(doc, 'openapi.json');
    const check = (schema: string, body: unknown) => {
      const validate = ajv.getSchema(`openapi.json#/components/schemas/${schema}`);
      if (!validate) throw new Error(`no schema ${schema}`);
      const ok = validate(body);
      return ok ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
    };
    return { doc, check };
  }

  it('describes the API as OpenAPI 3.1 with the configured id types', async () => {
    const { doc } = await validator();
    expect(doc.openapi).toBe('3.1.0');
    const params = doc.paths['/']?.get?.parameters ?? [];
    expect(params.map((p) => p.name)).toEqual([
      'id',
      'type',
      'fields',
      'segmentFields',
      'segmentTypes',
      'view',
    ]);
    expect(params[1]?.schema.enum).toEqual(['id_type_1', 'id_type_2', 'id_type_3', 'id_type_4']);
  });

  it('matches real answers: profiles, errors and health', async () => {
    const { doc, check } = await validator();
    for (const id of [samples.linked, samples.superNode, samples.orphan]) {
      const res = await fetch(`${base}/?id=${id}`);
      expect(res.status).toBe(200);
      expect(check('ProfileResponse', await res.json())).toEqual([]);
      // Every x- header the answer carries is documented.
      const documented = Object.keys(doc.paths['/']?.get?.responses['200']?.headers ?? {}).map(
        (h) => h.toLowerCase(),
      );
      for (const [name] of res.headers)
        if (name.startsWith('x-') && name !== 'x-content-type-options')
          expect(documented).toContain(name);
    }
    for (const path of [
      '/',
      '/?id=',
      `/?id=${'1'.repeat(300)}`,
      '/?id=%',
      '/?id=__proto__',
      '/x',
    ]) {
      const res = await fetch(`${base}${path}`);
      expect(doc.paths['/']?.get?.responses[String(res.status)]).toBeDefined();
      expect(check('Error', await res.json())).toEqual([]);
    }
    const post = await fetch(`${base}/?id=x`, { method: 'POST' });
    expect(check('Error', await post.json())).toEqual([]);
    expect(check('Health', await (await fetch(`${base}/health`)).json())).toEqual([]);
  });

  it('matches real answers of the batch endpoint and the answer selections', async () => {
    const { doc, check } = await validator();
    const batch = await fetch(`${base}/profiles:batchGet?segmentFields=id,name`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        ids: [{ id: samples.linked }, { id: 'bad id' }, { id: samples.orphan, type: 'id_type_9' }],
      }),
    });
    expect(batch.status).toBe(200);
    const answer = (await batch.json()) as { results: { status: number }[] };
    expect(answer.results.map((r) => r.status)).toEqual([200, 400, 400]);
    expect(check('BatchGetResponse', answer)).toEqual([]);
    // The view the request asks for selects the schema its answer must meet.
    for (const query of [
      'fields=segments',
      'view=flat',
      'view=flat&fields=attributes,unknownSegmentIds',
      'segmentTypes=interest',
      'segmentFields=id',
    ]) {
      const res = await fetch(`${base}/?id=${samples.linked}&${query}`);
      expect(res.status).toBe(200);
      const schema = query.includes('view=flat') ? 'FlatProfileResponse' : 'ProfileResponse';
      expect(check(schema, await res.json())).toEqual([]);
    }
    const flatBatch = await fetch(`${base}/profiles:batchGet?view=flat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ids: [{ id: samples.linked }, { id: 'bad id' }] }),
    });
    expect(check('FlatBatchGetResponse', await flatBatch.json())).toEqual([]);
    const operation = doc.paths['/profiles:batchGet']?.post;
    for (const [init, status] of [
      [{ body: '{bad', headers: { 'content-type': 'application/json' } }, 400],
      [{ body: '{"ids":[]}', headers: { 'content-type': 'application/json' } }, 400],
      [{ body: '{"ids":[{"id":"x"}]}', headers: { 'content-type': 'text/plain' } }, 415],
      [
        {
          body: JSON.stringify({ ids: ['x'.repeat(70_000)] }),
          headers: { 'content-type': 'application/json' },
        },
        413,
      ],
    ] as const) {
      const res = await fetch(`${base}/profiles:batchGet`, { method: 'POST', ...init });
      expect(res.status).toBe(status);
      expect(operation?.responses[String(status)]).toBeDefined();
      expect(check('Error', await res.json())).toEqual([]);
    }
  });

  it('takes a batch of BATCH_MAX_IDS long ids within the body limit', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => ({
      id: `${'f'.repeat(120)}${i}`,
      type: 'id_type_3',
    }));
    const res = await fetch(`${base}/profiles:batchGet`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ids }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { results: unknown[] }).results).toHaveLength(100);
  });

  it('rejects what the API never answers (the schemas are not vacuous)', async () => {
    const { check } = await validator();
    expect(
      check('ProfileResponse', { x: { type: 'id_type_1', found: 'yes', segments: 'none' } }),
    ).not.toEqual([]);
    // A full-view entry that breaks its schema fails, flat as it may look.
    expect(
      check('ProfileResponse', { x: { type: 'id_type_1', found: true, colour: 1 } }),
    ).not.toEqual([]);
    expect(check('FlatProfileResponse', { x: { segments: 'none' } })).not.toEqual([]);
    expect(
      check('BatchGetResponse', {
        results: [{ id: 'x', status: 400, error: { code: 'store_unavailable', message: 'm' } }],
      }),
    ).not.toEqual([]);
    expect(check('BatchGetResponse', { results: [{ id: 'x', status: 500 }] })).not.toEqual([]);
    expect(check('Error', { error: { code: 'boom', message: 'x' } })).not.toEqual([]);
    expect(check('Health', { status: 'fine' })).not.toEqual([]);
  });
});
