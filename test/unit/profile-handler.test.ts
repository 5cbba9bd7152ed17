import { beforeEach, describe, expect, it } from 'vitest';
import { CHECK_TTL_MS } from '../../functions/profile/backend-checks.js';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileHandler } from '../../functions/profile/handler.js';
import type { ProfileDeps } from '../../functions/profile/profile-deps.js';
import type { Catalog } from '../../shared/catalog/catalog.js';
import type { Segment } from '../../shared/catalog/segment.js';
import type { HttpResult } from '../../shared/http/http-event.js';
import { createIdTypeRegistry } from '../../shared/id-types.js';
import { silentLogger } from '../../shared/logger.js';
import type { MappingIndex } from '../../shared/mapping/mapping-index.js';
import type { MappingStore } from '../../shared/mapping/mapping-store.js';
import { SnapshotMappingStore } from '../../shared/mapping/snapshot-mapping-store.js';
import { RefreshingCache } from '../../shared/refreshing-cache.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { FakeProfileStore } from '../helpers/fake-profile-store.js';
import { cacheOf, catalogSnapshot, mappingSnapshot, registry } from '../helpers/fixed-snapshots.js';
import { httpEvent, resultJson, resultText } from '../helpers/http-event.js';
import { orderedKeys } from '../helpers/ordered-keys.js';
import { withBackendChecks } from '../helpers/profile-deps.js';

const A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'; // id_type_2
const B = '1234567890'; // id_type_4: integer-like, must still come after A
const C = 'ABCDEF0-1234-5678-9ABC-DEF0123456'; // id_type_1
const D = 'd'.repeat(64); // id_type_3, mapped but no profile
const E = 'eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee'; // id_type_2, profile but not mapped
const NOW_SECS = 1_800_000_000;

const SEGMENTS: Segment[] = [
  { id: '1', name: 'auto-intenders', type: 'interest', size: 100 },
  { id: '2', name: 'frequent-travellers', type: 'behavioral', size: 200, provider: 'p' },
];

let store: FakeProfileStore;
let clock: number;

function deps(env: Record<string, string> = {}, overrides: Partial<ProfileDeps> = {}): ProfileDeps {
  const cache = <V>(value: LoadedSnapshot<V>) => cacheOf(async () => value, { now: () => clock });
  return withBackendChecks({
    config: loadProfileConfig(env),
    registry,
    catalog: cache(catalogSnapshot(SEGMENTS)),
    mapping: snapshotStore(
      cache(
        mappingSnapshot([
          [
            [A, '222222'],
            [B, '444444'],
            [C, '111111'],
            [D, '333333'],
          ],
        ]),
      ),
    ),
    mappingBudgetBytes: 0,
    store,
    log: silentLogger,
    now: () => clock,
    ...overrides,
  });
}

/** The in-memory mapping store over a snapshot cache, as the runtime wires it. */
function snapshotStore(cache: RefreshingCache<LoadedSnapshot<MappingIndex>>): MappingStore {
  return new SnapshotMappingStore(cache, { maxStalenessSecs: 172_800 });
}

async function get(path: string, d: ProfileDeps = deps(), method = 'GET'): Promise<HttpResult> {
  return createProfileHandler(d)(httpEvent(path, method), {});
}

beforeEach(() => {
  clock = NOW_SECS * 1000;
  store = new FakeProfileStore()
    .put('222222', A, { segments: [1, 2, 999], country: 'FR', score: 0.5 })
    .put('444444', B, { segments: { '1': NOW_SECS - 10, '2': NOW_SECS + 10 }, country: 'DE' })
    .put('111111', C, { segments: [], device: 'ctv' })
    .put('222222', E, { segments: ['1'], country: 'ES' });
});

describe('GET /?id=', () => {
  it('answers the requested id first, then its linked ids, with segments resolved', async () => {
    const res = await get(`/?id=${A}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    // Key order is the contract: a JS object would have put the integer-like id B first.
    expect(orderedKeys(resultText(res))).toEqual([A, B, C, D]);
    const body = resultJson(res);
    expect(body[A]).toEqual({
      type: 'id_type_2',
      found: true,
      attributes: { country: 'FR', score: 0.5 },
      segments: SEGMENTS,
      unknownSegmentIds: ['999'],
    });
    expect(body[B]).toEqual({
      type: 'id_type_4',
      found: true,
      attributes: { country: 'DE' },
      segments: [SEGMENTS[1]],
      unknownSegmentIds: [],
    });
    expect(body[C]).toMatchObject({ type: 'id_type_1', found: true, segments: [] });
    expect(body[D]).toEqual({
      type: 'id_type_3',
      found: false,
      attributes: {},
      segments: [],
      unknownSegmentIds: [],
    });
  });

  it('reads every profile in one store call', async () => {
    await get(`/?id=${A}`);
    expect(store.calls).toEqual([
      [
        { set: '222222', id: A, keyType: 'string' },
        { set: '444444', id: B, keyType: 'string' },
        { set: '111111', id: C, keyType: 'string' },
        { set: '333333', id: D, keyType: 'string' },
      ],
    ]);
  });

  it('puts snapshot versions, the id type, linked counts and phase timings in headers', async () => {
    const res = await get(`/?id=${A}`);
    expect(res.headers['x-catalog-version']).toBe('20261126T000000Z-0000000c');
    expect(res.headers['x-mapping-version']).toBe('20261126T000000Z-0000000a');
    expect(res.headers['x-id-type']).toBe('id_type_2');
    expect(res.headers['x-linked-ids-total']).toBe('3');
    expect(res.headers['x-linked-ids-truncated']).toBeUndefined();
    expect(res.headers['server-timing']).toMatch(
      /^snapshots;dur=[\d.]+, mapping;dur=[\d.]+, store;dur=[\d.]+, render;dur=[\d.]+, total;dur=[\d.]+$/,
    );
  });

  it('normalises the id for its type', async () => {
    const res = await get(`/?id=${A.toUpperCase()}`);
    expect(res.statusCode).toBe(200);
    expect(orderedKeys(resultText(res))[0]).toBe(A);
  });

  it('honours an explicit type', async () => {
    const res = await get(`/?id=${B}&type=id_type_4`);
    expect(res.statusCode).toBe(200);
    expect(orderedKeys(resultText(res))).toEqual([B, A, C, D]);
    expect(res.headers['x-id-type']).toBe('id_type_4');
  });

  it('caps the linked ids and marks the cut', async () => {
    const res = await get(`/?id=${A}`, deps({ LINKED_IDS_MAX: '2' }));
    expect(Object.keys(resultJson(res))).toHaveLength(3);
    expect(res.headers['x-linked-ids-total']).toBe('3');
    expect(res.headers['x-linked-ids-truncated']).toBe('true');
    expect(store.calls[0]).toHaveLength(3);
  });

  it('finds an id the mapping does not know in its type set', async () => {
    const res = await get(`/?id=${E}`);
    expect(res.statusCode).toBe(200);
    expect(resultJson(res)).toEqual({
      [E]: {
        type: 'id_type_2',
        found: true,
        attributes: { country: 'ES' },
        segments: [SEGMENTS[0]],
        unknownSegmentIds: [],
      },
    });
    expect(res.headers['x-linked-ids-total']).toBe('0');
  });

  it('looks an unmapped id up in every type set it fits, in one call', async () => {
    const loose = createIdTypeRegistry([
      { name: 'cookie', code: 'c1', pattern: '^[a-z0-9-]+$', normalise: 'lower' },
      { name: 'device', code: 'd1', pattern: '^[a-z0-9-]+$', normalise: 'none' },
    ]);
    store.put('d1', 'shared-id', { segments: [2] });
    const res = await get('/?id=shared-id', deps({}, { registry: loose }));
    expect(res.statusCode).toBe(200);
    expect(resultJson(res)).toMatchObject({ 'shared-id': { type: 'device', found: true } });
    expect(store.calls).toEqual([
      [
        { set: 'c1', id: 'shared-id', keyType: 'string' },
        { set: 'd1', id: 'shared-id', keyType: 'string' },
      ],
    ]);
  });

  it('keeps the links of an id that the mapping holds under two id types apart', async () => {
    const loose = createIdTypeRegistry([
      { name: 'cookie', code: 'c1', pattern: '^[a-z0-9-]+$', normalise: 'lower' },
      { name: 'device', code: 'd1', pattern: '^[a-z0-9-]+$', normalise: 'none' },
    ]);
    const mapping = cacheOf(async () =>
      mappingSnapshot(
        [
          [
            ['shared-id', 'c1'],
            ['cookie-friend', 'c1'],
          ],
          [
            ['shared-id', 'd1'],
            ['device-friend', 'd1'],
          ],
        ],
        undefined,
        loose,
      ),
    );
    const d = deps({}, { registry: loose, mapping: snapshotStore(mapping) });
    const asDevice = await get('/?id=shared-id&type=device', d);
    expect(orderedKeys(resultText(asDevice))).toEqual(['shared-id', 'device-friend']);
    expect(resultJson(asDevice)).toMatchObject({ 'shared-id': { type: 'device' } });
    const asCookie = await get('/?id=shared-id&type=cookie', d);
    expect(orderedKeys(resultText(asCookie))).toEqual(['shared-id', 'cookie-friend']);
  });

  it('keys integer id types as integers, in their canonical form', async () => {
    const accounts = createIdTypeRegistry([
      { name: 'account', code: 'a1', pattern: '^[0-9]{1,20}$', keyType: 'integer' },
    ]);
    store.put('a1', '42', { country: 'PL' }, 'integer').put('a1', '43', { country: 'CZ' });
    const d = deps({}, { registry: accounts });
    const res = await get('/?id=0042&type=account', d);
    expect(res.statusCode).toBe(200);
    expect(resultJson(res)).toMatchObject({ '42': { type: 'account', found: true } });
    expect(store.calls.at(-1)).toEqual([{ set: 'a1', id: '42', keyType: 'integer' }]);
    // A record written under the string key "43" is another record: not this id's.
    expect((await get('/?id=43&type=account', d)).statusCode).toBe(404);
  });

  it.each([
    ['/?id=9223372036854775808&type=account', /signed 64-bit integer/],
    ['/?id=9223372036854775808', /signed 64-bit integer/],
    ['/?id=12a4&type=account', /decimal integer/],
  ])('%s -> 400 malformed_id for an integer id type', async (path, message) => {
    const accounts = createIdTypeRegistry([
      { name: 'account', code: 'a1', pattern: '^[0-9]{1,20}$', keyType: 'integer' },
    ]);
    const res = await get(path, deps({}, { registry: accounts }));
    expect(res.statusCode).toBe(400);
    expect(resultJson(res)).toMatchObject({ error: { code: 'malformed_id', message } });
  });

  it('answers 404 for an id nobody knows', async () => {
    const res = await get('/?id=ffffffff-ffff-4fff-8fff-ffffffffffff');
    expect(res.statusCode).toBe(404);
    expect(resultJson(res)).toEqual({
      error: { code: 'unknown_id', message: 'no profile is known for this id' },
    });
  });

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', '__defineGetter__'])(
    'treats %s as an unknown id, with the default and with a permissive registry',
    async (id) => {
      const anything = createIdTypeRegistry([
        { name: 'any', code: 'a1', pattern: '^.+$', normalise: 'none' },
      ]);
      for (const d of [deps(), deps({}, { registry: anything })]) {
        const res = await get(`/?id=${id}`, d);
        expect(res.statusCode).toBe(404);
        expect(resultJson(res)).toMatchObject({ error: { code: 'unknown_id' } });
      }
      expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('found');
    },
  );
});

describe('paths', () => {
  it('answers a path of slashes as the root, and trailing slashes as the path', async () => {
    expect((await get(`//?id=${A}`)).statusCode).toBe(200);
    expect(resultText(await get(`///?id=${A}`))).toBe(resultText(await get(`/?id=${A}`)));
    expect((await get('/health//')).statusCode).not.toBe(404);
    expect((await get('//nope//')).statusCode).toBe(404);
  });

  it('costs no more for a run of slashes inside the path than for as many letters', async () => {
    // A trailing-slash trim by regular expression retries from each slash of a run that does
    // not end the path: quadratic (a 16 KB path cost 200 ms, 1,000 GETs). Compared with a path
    // of letters of the same length, the same answer (404), in the same run: no time limit.
    const d = deps();
    const slashes = `/${'/'.repeat(16_300)}a`;
    const letters = `/${'b'.repeat(16_300)}a`;
    const cost = async (path: string) => {
      const rounds: number[] = [];
      for (let round = 0; round < 7; round++) {
        const t0 = performance.now();
        for (let i = 0; i < 5; i++) await get(path, d);
        rounds.push(performance.now() - t0);
      }
      return rounds.sort((x, y) => x - y)[3] as number;
    };
    await cost(letters); // warm up
    expect(await cost(slashes)).toBeLessThan(20 * (await cost(letters)) + 1);
  });
});

describe('bad requests', () => {
  it.each([
    ['/', 'missing_id'],
    ['/?type=id_type_1', 'missing_id'],
    ['/?id=', 'empty_id'],
    [`/?id=${A}&id=${A}`, 'repeated_parameter'],
    [`/?id=${'1'.repeat(129)}`, 'id_too_long'],
    ['/?id=has%20space', 'malformed_id'],
    ['/?id=tab%09', 'malformed_id'],
    ['/?id=%C3%A9t%C3%A9', 'malformed_id'],
    ['/?id=%E0%A4%A', 'invalid_query'],
    ['/?id=%', 'invalid_query'],
    [`/?id=${A}&type=id_type_9`, 'unknown_type'],
    [`/?id=${A}&type=`, 'unknown_type'],
    [`/?id=${A}&type=id_type_1`, 'malformed_id'],
    [`/?id=${A}&type=id_type_2&type=id_type_2`, 'repeated_parameter'],
    ['/?id[]=x', 'missing_id'],
  ])('%s -> 400 %s', async (path, code) => {
    const res = await get(path);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = resultJson(res) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(0);
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])('%s -> 405 with Allow', async (method) => {
    const res = await get(`/?id=${A}`, deps(), method);
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(resultJson(res)).toMatchObject({ error: { code: 'method_not_allowed' } });
  });

  it('answers HEAD like GET', async () => {
    const res = await get(`/?id=${A}`, deps(), 'HEAD');
    expect(res.statusCode).toBe(200);
  });

  it('answers 404 for other paths', async () => {
    const res = await get(`/profiles?id=${A}`);
    expect(res.statusCode).toBe(404);
    expect(resultJson(res)).toMatchObject({ error: { code: 'not_found' } });
  });
});

describe('backend failures', () => {
  it('answers 503 with Retry-After when the store is down, without internals', async () => {
    store.failing = true;
    const res = await get(`/?id=${A}`);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(resultJson(res)).toEqual({
      error: {
        code: 'store_unavailable',
        message: 'the profile store is unavailable; retry later',
      },
    });
  });

  it('answers a bare 500 when something unexpected breaks', async () => {
    store.getMany = async () => {
      throw new TypeError('secret driver detail at /srv/x.js:1');
    };
    const res = await get(`/?id=${A}`);
    expect(res.statusCode).toBe(500);
    expect(resultText(res)).toBe('{"error":{"code":"internal","message":"internal error"}}');
  });

  it('answers 503 while the first snapshot load fails, then serves once it succeeds', async () => {
    let broken = true;
    const mapping = new RefreshingCache(
      async () => {
        if (broken) throw new Error('bucket unreachable');
        return mappingSnapshot([[[A, '222222']]]);
      },
      { refreshIntervalMs: 60_000, retryMinMs: 1_000, retryMaxMs: 60_000, now: () => clock },
    );
    const d = deps({}, { mapping: snapshotStore(mapping) });
    const first = await get(`/?id=${A}`, d);
    expect(first.statusCode).toBe(503);
    expect(first.headers['retry-after']).toBe('5');
    expect(resultJson(first)).toMatchObject({ error: { code: 'snapshots_unavailable' } });
    expect(resultText(first)).not.toContain('bucket');

    broken = false;
    clock += 1_000; // past the back-off
    const second = await get(`/?id=${A}`, d);
    expect(second.statusCode).toBe(200);
  });

  it('times the first load out after FIRST_LOAD_TIMEOUT_MS', async () => {
    const never = new RefreshingCache<LoadedSnapshot<Catalog>>(
      () => new Promise<never>(() => undefined),
      {
        refreshIntervalMs: 1,
        retryMinMs: 1,
        retryMaxMs: 1,
      },
    );
    const res = await get(`/?id=${A}`, deps({ FIRST_LOAD_TIMEOUT_MS: '100' }, { catalog: never }));
    expect(res.statusCode).toBe(503);
  });

  it('serves a new snapshot version after the refresh interval, without blocking', async () => {
    let version = '20261126T000000Z-0000000a';
    const mapping = new RefreshingCache(
      async (current: { manifest: { version: string } } | undefined) =>
        current?.manifest.version === version
          ? undefined
          : mappingSnapshot([[[A, '222222']], [[E, '222222']]], version),
      { refreshIntervalMs: 60_000, retryMinMs: 1_000, retryMaxMs: 60_000, now: () => clock },
    );
    const d = deps({}, { mapping: snapshotStore(mapping) });
    expect((await get(`/?id=${A}`, d)).headers['x-mapping-version']).toBe(version);
    version = '20261126T010000Z-0000000b';
    clock += 61_000;
    // The read that notices the age still gets the old version; the refresh runs behind it.
    expect((await get(`/?id=${A}`, d)).headers['x-mapping-version']).toBe(
      '20261126T000000Z-0000000a',
    );
    await new Promise((r) => setTimeout(r, 10));
    expect((await get(`/?id=${A}`, d)).headers['x-mapping-version']).toBe(version);
  });
});

describe('GET /health', () => {
  it('reports snapshot versions and ages and the store', async () => {
    const d = deps();
    await get(`/?id=${A}`, d); // loads both snapshots
    const res = await get('/health', d);
    expect(res.statusCode).toBe(200);
    const body = resultJson(res) as {
      status: string;
      snapshots: Record<string, { version: string; ageSecs: number; loaded: boolean }>;
      store: { name: string; ok: boolean };
    };
    expect(body.status).toBe('degraded'); // the fixtures were created long before NOW_SECS
    expect(body.snapshots.catalog?.version).toBe('20261126T000000Z-0000000c');
    expect(body.snapshots.mapping?.ageSecs).toBe(
      NOW_SECS - Date.parse('2026-11-26T00:00:00Z') / 1000,
    );
    expect(body.store).toMatchObject({ name: 'fake', ok: true });
  });

  it('is ok when snapshots are fresh, unavailable once the store is down, ok once it is back', async () => {
    clock = Date.parse('2026-11-26T01:00:00Z');
    const d = deps();
    await get(`/?id=${A}`, d);
    expect(resultJson(await get('/health', d))).toMatchObject({ status: 'ok' });
    store.failing = true;
    // Found by the next check (CHECK_TTL_MS later), or at once by a request that failed.
    clock += CHECK_TTL_MS;
    const down = await get('/health', d);
    expect(down.statusCode).toBe(503);
    expect(resultJson(down)).toMatchObject({ status: 'unavailable', store: { ok: false } });
    store.failing = false;
    expect((await get(`/?id=${A}`, d)).statusCode).toBe(200);
    expect(resultJson(await get('/health', d))).toMatchObject({
      status: 'ok',
      store: { ok: true },
    });
    store.failing = true;
    expect((await get(`/?id=${A}`, d)).statusCode).toBe(503);
    expect((await get('/health', d)).statusCode).toBe(503);
  });

  it('asks the store at most once per CHECK_TTL_MS, however often it is called', async () => {
    const d = deps();
    await get(`/?id=${A}`, d);
    const pings = store.pings;
    await Promise.all(Array.from({ length: 50 }, () => get('/health', d)));
    for (let i = 0; i < 50; i++) await get('/health', d);
    expect(store.pings - pings).toBe(1);
    clock += CHECK_TTL_MS;
    await get('/health', d);
    expect(store.pings - pings).toBe(2);
  });

  it('tells only its status to callers once deployed; details go to operator keys', async () => {
    const OPERATOR = 'operator-key-0123456789';
    const CALLER = 'caller-key-0123456789';
    const health = async (env: Record<string, string>, key?: string) =>
      resultJson(
        await createProfileHandler(deps({ NODE_ENV: 'production', ...env }))(
          httpEvent('/health', 'GET', key ? { 'x-api-key': key } : {}),
          {},
        ),
      );
    expect(Object.keys(await health({}))).toEqual(['status']);
    const keys = { API_KEYS: CALLER, OPERATOR_API_KEYS: OPERATOR };
    expect(Object.keys(await health(keys, CALLER))).toEqual(['status']);
    expect(await health(keys, OPERATOR)).toMatchObject({ snapshots: {}, store: {}, memory: {} });
    expect(await health({ OPERATOR_API_KEYS: OPERATOR })).toEqual({ status: expect.any(String) });
    // A local run (NODE_ENV not production, no operator keys) shows everything.
    expect(await health({ NODE_ENV: 'development' })).toHaveProperty('memory');
  });

  it('is unavailable before the first load, and starts it', async () => {
    const d = deps();
    const res = await get('/health', d);
    expect(res.statusCode).toBe(503);
    await new Promise((r) => setTimeout(r, 10));
    expect((await get('/health', d)).statusCode).toBe(200);
  });
});

describe('request logs', () => {
  async function logged(
    env: Record<string, string>,
    headers: Record<string, string>,
    path = `/?id=${A}`,
  ) {
    const { log, lines } = captureLogger();
    const d = deps({ GOOGLE_CLOUD_PROJECT: 'my-proj', LOG_REQUESTS: 'all', ...env }, { log });
    await createProfileHandler(d)(httpEvent(path, 'GET', headers), {});
    return lines.filter((l) => typeof l.httpRequest === 'object');
  }

  it.each([
    // [LOG_REQUESTS, path, logged?]
    ['errors', `/?id=${A}`, false],
    ['errors', '/?id=ffffffff-ffff-4fff-8fff-ffffffffffff', false], // 404 unknown_id: an answer
    ['errors', '/?id=', true], // 400
    ['errors', '/nope', true], // 404 not_found: a client bug
    ['all', `/?id=${A}`, true],
    ['sample:0', `/?id=${A}`, false],
    ['sample:1', `/?id=${A}`, true],
    ['sample:0', '/?id=', true],
  ])('LOG_REQUESTS=%s logs %s: %s', async (setting, path, expected) => {
    expect(await logged({ LOG_REQUESTS: setting }, {}, path)).toHaveLength(expected ? 1 : 0);
  });

  it('always logs slow requests (LOG_SLOW_MS) and store failures, at their severity', async () => {
    store.delayMs = 20;
    expect(await logged({ LOG_REQUESTS: 'errors', LOG_SLOW_MS: '10' }, {})).toHaveLength(1);
    store.delayMs = 0;
    const { log, lines } = captureLogger();
    store.failing = true;
    await createProfileHandler(deps({ LOG_REQUESTS: 'errors' }, { log }))(
      httpEvent(`/?id=${A}`),
      {},
    );
    expect(lines.filter((l) => typeof l.httpRequest === 'object')).toMatchObject([
      { severity: 'ERROR', httpRequest: { status: 503 } },
    ]);
  });

  it('writes one line per request with status, latency and phases, linked to the trace', async () => {
    const lines = await logged(
      {},
      { 'x-cloud-trace-context': '0123456789abcdef0123456789abcdef/123;o=1' },
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      severity: 'INFO',
      httpRequest: { requestMethod: 'GET', requestUrl: '/', status: 200 },
      'logging.googleapis.com/trace': 'projects/my-proj/traces/0123456789abcdef0123456789abcdef',
      'logging.googleapis.com/spanId': '000000000000007b',
      'logging.googleapis.com/trace_sampled': true,
    });
    expect(Object.keys(lines[0]?.phases as object)).toEqual([
      'snapshots',
      'mapping',
      'store',
      'render',
      'total',
    ]);
  });

  it('reads W3C traceparent too', async () => {
    const lines = await logged(
      {},
      { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    );
    expect(lines[0]?.['logging.googleapis.com/trace']).toBe(
      'projects/my-proj/traces/4bf92f3577b34da6a3ce929d0e0e4736',
    );
  });

  it('keeps user ids out of logs unless LOG_USER_IDS is set', async () => {
    expect(JSON.stringify(await logged({}, {}))).not.toContain(A);
    expect(JSON.stringify(await logged({ LOG_USER_IDS: 'true' }, {}))).toContain(A);
  });
});

describe('API keys', () => {
  const KEYS = { API_KEYS: 'first-key-0123456789, second-key-0123456789' };

  it.each([
    [{}, 401],
    [{ 'x-api-key': '' }, 401],
    [{ 'x-api-key': 'first-key-012345678' }, 401],
    [{ 'x-api-key': 'first-key-0123456789x' }, 401],
    [{ 'x-api-key': 'first-key-0123456789' }, 200],
    [{ 'x-api-key': 'second-key-0123456789' }, 200],
  ])('headers %j -> %i', async (headers, status) => {
    const res = await createProfileHandler(deps(KEYS))(httpEvent(`/?id=${A}`, 'GET', headers), {});
    expect(res.statusCode).toBe(status);
    if (status === 401) {
      expect(resultJson(res)).toEqual({
        error: { code: 'unauthorized', message: 'a valid x-api-key header is required' },
      });
    }
  });

  it('guards health and the OpenAPI document too', async () => {
    for (const path of ['/health', '/openapi.json']) {
      expect((await get(path, deps(KEYS))).statusCode).toBe(401);
    }
  });

  it('refuses keys too short to be secret', () => {
    expect(() => loadProfileConfig({ API_KEYS: 'short' })).toThrow(
      /API_KEYS: every key needs at least 16/,
    );
  });
});
