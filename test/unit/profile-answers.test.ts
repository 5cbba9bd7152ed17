import { beforeEach, describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileHandler } from '../../functions/profile/handler.js';
import type { ProfileDeps } from '../../functions/profile/profile-deps.js';
import type { Catalog } from '../../shared/catalog/catalog.js';
import type { Segment } from '../../shared/catalog/segment.js';
import type { HttpResult } from '../../shared/http/http-event.js';
import { silentLogger } from '../../shared/logger.js';
import { SnapshotMappingStore } from '../../shared/mapping/snapshot-mapping-store.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { FakeProfileStore } from '../helpers/fake-profile-store.js';
import { cacheOf, catalogSnapshot, mappingSnapshot, registry } from '../helpers/fixed-snapshots.js';
import { httpEvent, resultJson, resultText } from '../helpers/http-event.js';
import { orderedKeys } from '../helpers/ordered-keys.js';
import { withBackendChecks } from '../helpers/profile-deps.js';

// What a caller can ask of an answer (fields, segment fields and types, the original flat
// format) and the batch endpoint, on the handler with fakes of the stores.
const A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'; // id_type_2, linked to B
const B = '1234567890'; // id_type_4
const C = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc'; // id_type_2, alone in the mapping
const E = 'eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee'; // id_type_2, profile, not mapped
const NOW_SECS = 1_800_000_000;
const SEGMENTS: Segment[] = [
  { id: '1', name: 'auto-intenders', type: 'interest', size: 100, provider: 'p1' },
  { id: '2', name: 'parents', type: 'demographic', size: 200 },
  { id: '3', name: 'travellers', type: 'behavioral', size: 300 },
];

let store: FakeProfileStore;

function deps(env: Record<string, string> = {}): ProfileDeps {
  const cache = <V>(value: LoadedSnapshot<V>) => cacheOf(async () => value);
  return withBackendChecks({
    config: loadProfileConfig(env),
    registry,
    catalog: cache(catalogSnapshot(SEGMENTS)),
    mapping: new SnapshotMappingStore(
      cache(
        mappingSnapshot([
          [
            [A, '222222'],
            [B, '444444'],
          ],
          [[C, '222222']],
        ]),
      ),
      { maxStalenessSecs: 172_800 },
    ),
    mappingBudgetBytes: 0,
    store,
    log: silentLogger,
    now: () => NOW_SECS * 1000,
  });
}

async function get(path: string, d = deps()): Promise<HttpResult> {
  return createProfileHandler(d)(httpEvent(path), {});
}

async function post(
  path: string,
  body: unknown,
  d = deps(),
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<HttpResult> {
  const event = {
    ...httpEvent(path, 'POST', headers),
    body: typeof body === 'string' ? body : JSON.stringify(body),
  };
  return createProfileHandler(d)(event, {});
}

beforeEach(() => {
  store = new FakeProfileStore()
    .put('222222', A, { segments: [1, 2, 3, 99], country: 'FR', segments_seen: 4 })
    .put('444444', B, { segments: ['2'], country: 'DE' })
    .put('222222', E, { segments: [3], country: 'ES' });
});

describe('choosing what an answer carries', () => {
  it('keeps only the fields asked for (type and found always come)', async () => {
    const res = await get(`/?id=${A}&fields=segments`);
    expect(res.statusCode).toBe(200);
    expect(resultJson(res)[A]).toEqual({ type: 'id_type_2', found: true, segments: SEGMENTS });
    const none = await get(`/?id=${A}&fields=unknownSegmentIds,attributes`);
    expect(resultJson(none)[A]).toEqual({
      type: 'id_type_2',
      found: true,
      attributes: { country: 'FR', segments_seen: 4 },
      unknownSegmentIds: ['99'],
    });
  });

  it('carries only the segment fields asked for, in the catalog order', async () => {
    const res = await get(`/?id=${A}&segmentFields=name,id&fields=segments`);
    expect(resultText(res)).toContain('"segments":[{"id":"1","name":"auto-intenders"},');
    expect(resultJson(res)[A]).toEqual({
      type: 'id_type_2',
      found: true,
      segments: SEGMENTS.map(({ id, name }) => ({ id, name })),
    });
  });

  it('keeps only segments of the types asked for, still reporting unknown ids', async () => {
    const res = await get(`/?id=${A}&segmentTypes=demographic,interest`);
    expect(resultJson(res)[A]).toMatchObject({
      segments: [SEGMENTS[0], SEGMENTS[1]],
      unknownSegmentIds: ['99'],
    });
  });

  it('answers in the original flat format with view=flat, our keys winning a clash', async () => {
    const res = await get(`/?id=${A}&view=flat`);
    expect(res.statusCode).toBe(200);
    expect(orderedKeys(resultText(res))).toEqual([A, B]);
    expect(resultJson(res)).toEqual({
      [A]: { country: 'FR', segments_seen: 4, segments: SEGMENTS },
      [B]: { country: 'DE', segments: [SEGMENTS[1]] },
    });
    // With another segments bin, an attribute named "segments" clashes: ours win.
    store.put('222222', C, { segs: [3], segments: 'raw', country: 'IT' });
    const clash = await get(`/?id=${C}&view=flat`, deps({ SEGMENTS_BIN: 'segs' }));
    expect(resultJson(clash)).toEqual({ [C]: { country: 'IT', segments: [SEGMENTS[2]] } });
    const flatSelected = await get(`/?id=${E}&view=flat&fields=segments,unknownSegmentIds`);
    expect(resultJson(flatSelected)).toEqual({
      [E]: { segments: [SEGMENTS[2]], unknownSegmentIds: [] },
    });
  });

  it.each([
    ['fields=nope', 'invalid_fields'],
    ['fields=segments,', 'invalid_fields'],
    ['segmentFields=id,colour', 'invalid_segment_fields'],
    ['segmentTypes=', 'invalid_segment_types'],
    ['view=tree', 'invalid_view'],
    ['view=flat&view=full', 'repeated_parameter'],
  ])('%s -> 400 %s', async (query, code) => {
    const res = await get(`/?id=${A}&${query}`);
    expect(res.statusCode).toBe(400);
    expect(resultJson(res)).toMatchObject({ error: { code } });
  });
});

describe('POST /profiles:batchGet', () => {
  it('answers every id in request order, each as GET would, reading all profiles once', async () => {
    const res = await post('/profiles:batchGet', {
      ids: [
        { id: A },
        { id: 'not an id' },
        { id: E, type: 'id_type_2' },
        { id: A },
        { id: 'ffffffff-ffff-4fff-8fff-ffffffffffff' },
      ],
    });
    expect(res.statusCode).toBe(200);
    const single = resultJson(await get(`/?id=${A}`));
    const body = resultJson(res) as { results: Record<string, unknown>[] };
    expect(body.results.map((r) => [r.id, r.status])).toEqual([
      [A, 200],
      ['not an id', 400],
      [E, 200],
      [A, 200],
      ['ffffffff-ffff-4fff-8fff-ffffffffffff', 404],
    ]);
    expect(body.results[0]).toEqual({
      id: A,
      status: 200,
      profiles: single,
      linkedIds: { total: 1, truncated: false },
    });
    expect(body.results[1]).toMatchObject({ error: { code: 'malformed_id' } });
    expect(body.results[4]).toMatchObject({ error: { code: 'unknown_id' } });
    // The GET above was one call; the batch one more, each profile key once.
    const batchCall = store.calls[0] ?? [];
    expect(store.calls).toHaveLength(2);
    const names = batchCall.map((k) => `${k.set}/${k.id}`);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining([`222222/${A}`, `444444/${B}`, `222222/${E}`]));
  });

  it('applies fields and views to every result', async () => {
    const res = await post('/profiles:batchGet?view=flat&fields=attributes', { ids: [{ id: A }] });
    expect((resultJson(res) as { results: { profiles: unknown }[] }).results[0]?.profiles).toEqual({
      [A]: { country: 'FR', segments_seen: 4 },
      [B]: { country: 'DE' },
    });
  });

  it('caps linked ids so that one call stays within BATCH_MAX_PROFILES', async () => {
    const res = await post(
      '/profiles:batchGet',
      { ids: [{ id: A }, { id: C }] },
      deps({ BATCH_MAX_PROFILES: '2' }),
    );
    const results = (resultJson(res) as { results: { linkedIds: unknown; profiles: object }[] })
      .results;
    expect(results[0]?.linkedIds).toEqual({ total: 1, truncated: true });
    expect(Object.keys(results[0]?.profiles ?? {})).toEqual([A]);
  });

  it.each([
    ['not JSON', '{ids:', 400, 'invalid_json'],
    ['another shape', { ids: 'x' }, 400, 'invalid_body'],
    ['extra keys', { ids: [{ id: A }], more: 1 }, 400, 'invalid_body'],
    ['an array', [{ id: A }], 400, 'invalid_body'],
    ['no ids', { ids: [] }, 400, 'no_ids'],
    ['too many ids', { ids: Array.from({ length: 101 }, () => ({ id: A })) }, 400, 'too_many_ids'],
  ])('refuses %s as a whole (%i %s)', async (_what, body, status, code) => {
    const res = await post('/profiles:batchGet', body);
    expect(res.statusCode).toBe(status);
    expect(resultJson(res)).toMatchObject({ error: { code } });
    expect(store.calls).toEqual([]);
  });

  it('answers a malformed item on its own, never failing the others', async () => {
    const res = await post('/profiles:batchGet', {
      ids: [{ id: 5 }, null, { id: A, type: 'id_type_9' }, { id: A, colour: 'red' }, { id: A }],
    });
    const results = (
      resultJson(res) as { results: { id: unknown; status: number; error?: { code: string } }[] }
    ).results;
    expect(results.map((r) => [r.id, r.status, r.error?.code])).toEqual([
      [null, 400, 'invalid_item'],
      [null, 400, 'invalid_item'],
      [A, 400, 'unknown_type'],
      [A, 400, 'invalid_item'],
      [A, 200, undefined],
    ]);
  });

  it('answers 415 to another content type and 405 to another method', async () => {
    const res = await post('/profiles:batchGet', { ids: [{ id: A }] }, deps(), {
      'content-type': 'text/plain',
    });
    expect(res.statusCode).toBe(415);
    const get405 = await get('/profiles:batchGet');
    expect(get405.statusCode).toBe(405);
    expect(get405.headers.allow).toBe('POST');
  });

  it('answers 503 for the whole call when the profile store fails, never a partial 200', async () => {
    store.failing = true;
    const res = await post('/profiles:batchGet', { ids: [{ id: A }, { id: 'x y' }] });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(resultJson(res)).toMatchObject({ error: { code: 'store_unavailable' } });
  });
});

describe('what one batch call costs, whatever it asks', () => {
  it('checks fields, view and segment fields before waiting for a cold instance', async () => {
    const cold = {
      ...deps({ FIRST_LOAD_TIMEOUT_MS: '200' }),
      catalog: cacheOf<Catalog>(() => new Promise(() => undefined)),
    };
    for (const query of ['fields=colour', 'view=wide', 'segmentFields=id,,name']) {
      const res = await post(`/profiles:batchGet?${query}`, { ids: [{ id: A }] }, cold);
      expect(res.statusCode).toBe(400);
    }
  });

  it('reads at most BATCH_MAX_PROFILES profiles, counting an untyped id once per type it may be', async () => {
    // Two types of one syntax: an id the mapping does not know is read in both sets.
    const types = JSON.stringify([
      { name: 'ios', code: '1', pattern: '^[a-z]{3}$' },
      { name: 'android', code: '2', pattern: '^[a-z]{3}$' },
    ]);
    const d = (max: number) => ({
      ...deps({ ID_TYPES_JSON: types, BATCH_MAX_PROFILES: String(max) }),
      registry: loadProfileConfig({ ID_TYPES_JSON: types }).ID_TYPES_JSON,
    });
    const ids = { ids: [{ id: 'abc' }, { id: 'def' }, { id: 'ghi', type: 'ios' }] };
    const refused = await post('/profiles:batchGet', ids, d(4));
    expect(refused.statusCode).toBe(400);
    expect(resultJson(refused)).toMatchObject({ error: { code: 'too_many_profiles' } });
    expect(store.calls).toEqual([]);
    const answered = await post('/profiles:batchGet', ids, d(5));
    expect(answered.statusCode).toBe(200);
    expect(store.calls.map((keys) => keys.length)).toEqual([5]);
  });

  it('renders each profile once however many results hold it', async () => {
    let rendered = 0;
    const counted = { segments: [1, 2, 3] } as Record<string, unknown>;
    Object.defineProperty(counted, 'country', {
      enumerable: true,
      get: () => {
        rendered++;
        return 'FR';
      },
    });
    store.put('222222', A, counted);
    // A and B are one person: A's profile is in A's result and in B's, and A is asked 50 times.
    const ids = [...Array.from({ length: 50 }, () => ({ id: A })), { id: B }];
    const res = await post('/profiles:batchGet', { ids });
    expect(res.statusCode).toBe(200);
    const results = (resultJson(res) as { results: { profiles: Record<string, unknown> }[] })
      .results;
    expect(results).toHaveLength(51);
    for (const r of results) expect(r.profiles[A]).toMatchObject({ attributes: { country: 'FR' } });
    expect(rendered).toBe(1);
  });

  it('answers 413 answer_too_large from the first result that would pass BATCH_MAX_ANSWER_BYTES', async () => {
    store.put('222222', A, { segments: [1, 2, 3], blob: 'x'.repeat(30_000) });
    const ids = [{ id: E }, { id: A }, { id: B }, { id: A }, { id: 'x y' }, { id: E }];
    const res = await post(
      '/profiles:batchGet',
      { ids },
      deps({ BATCH_MAX_ANSWER_BYTES: '65536' }),
    );
    expect(res.statusCode).toBe(200);
    expect(resultText(res).length).toBeLessThanOrEqual(65_536 + 1_000);
    const results = (
      resultJson(res) as { results: { id: string; status: number; error?: { code: string } }[] }
    ).results;
    expect(results.map((r) => [r.id, r.status, r.error?.code])).toEqual([
      [E, 200, undefined],
      [A, 200, undefined],
      // B's result holds A's profile too: copied, not rendered again, but its bytes count.
      [B, 200, undefined],
      [A, 413, 'answer_too_large'],
      ['x y', 400, 'malformed_id'],
      [E, 413, 'answer_too_large'],
    ]);
  });
});
