import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerKeys } from '../../functions/profile/answer-keys.js';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileHandler } from '../../functions/profile/handler.js';
import type { ProfileDeps } from '../../functions/profile/profile-deps.js';
import type { HttpHandler } from '../../shared/http/http-event.js';
import { silentLogger } from '../../shared/logger.js';
import { SnapshotMappingStore } from '../../shared/mapping/snapshot-mapping-store.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { FakeProfileStore } from '../helpers/fake-profile-store.js';
import { cacheOf, catalogSnapshot, mappingSnapshot } from '../helpers/fixed-snapshots.js';
import { httpEvent, resultText } from '../helpers/http-event.js';
import { withBackendChecks } from '../helpers/profile-deps.js';
import { DuplicateKeyError, parseStrictJson } from '../helpers/strict-json.js';

// Id types whose syntax overlaps (as iOS and Android advertising ids both are UUIDs): one person
// can hold the same id text under several types. Ids are drawn from a few texts, some written
// like the qualified keys of the rule (`t0:a`, `t0:a#2`), to make every fallback happen.
const ID_TEXTS = ['a', 'b', '7', 't0:a', 't1:a', 't0:a#2', 't2:7'];
const PATTERN = '^[ab7t0-9:#]{1,8}$';

type Member = readonly [id: string, type: number];

const graph = fc.record({
  types: fc.integer({ min: 2, max: 4 }),
  members: fc.uniqueArray(fc.tuple(fc.constantFrom(...ID_TEXTS), fc.integer({ min: 0, max: 3 })), {
    minLength: 1,
    maxLength: 14,
    selector: ([id, type]) => `${id} ${type}`,
  }),
  cuts: fc.array(fc.integer({ min: 1, max: 14 }), { maxLength: 4 }),
  linkedMax: fc.integer({ min: 1, max: 12 }),
});

function handlerFor(types: number, persons: Member[][], linkedMax: number): HttpHandler {
  const specs = Array.from({ length: types }, (_, t) => ({
    name: `t${t}`,
    code: `c${t}`,
    pattern: PATTERN,
  }));
  const config = loadProfileConfig({
    ID_TYPES_JSON: JSON.stringify(specs),
    LINKED_IDS_MAX: String(linkedMax),
  });
  const store = new FakeProfileStore();
  for (const person of persons) {
    for (const [id, t] of person) store.put(`c${t}`, id, { segments: [1], n: `${t}/${id}` });
  }
  const cache = <V>(value: LoadedSnapshot<V>) => cacheOf(async () => value);
  const mapping = mappingSnapshot(
    persons.map((p) => p.map(([id, t]) => [id, `c${t}`] as const)),
    undefined,
    config.ID_TYPES_JSON,
  );
  const deps: ProfileDeps = withBackendChecks({
    config,
    registry: config.ID_TYPES_JSON,
    catalog: cache(catalogSnapshot([{ id: '1', name: 'one', type: 'x' }])),
    mapping: new SnapshotMappingStore(cache(mapping), { maxStalenessSecs: 172_800 }),
    mappingBudgetBytes: 0,
    store,
    log: silentLogger,
    now: () => 1_800_000_000_000,
  });
  return createProfileHandler(deps);
}

/** The persons of a generated graph: its members (types folded into range) cut into groups. */
function personsOf(g: { types: number; members: [string, number][]; cuts: number[] }): Member[][] {
  const folded = g.members.map(([id, t]) => [id, t % g.types] as const);
  const unique = [...new Map(folded.map((m) => [`${m[0]} ${m[1]}`, m])).values()];
  const persons: Member[][] = [];
  let start = 0;
  for (const cut of [...g.cuts].sort((x, y) => x - y)) {
    if (cut > start && cut < unique.length) {
      persons.push(unique.slice(start, cut));
      start = cut;
    }
  }
  persons.push(unique.slice(start));
  return persons;
}

/** An answer's top-level entries, the body checked for duplicate keys at every level. */
function strictEntries(text: string): [string, unknown][] {
  return [...(parseStrictJson(text) as Map<string, unknown>)];
}

describe('answers never hold the same key twice', () => {
  it('keeps the requested id bare and first, qualifying a repeated id text by its type', async () => {
    await fc.assert(
      fc.asyncProperty(graph, async (g) => {
        const persons = personsOf(g);
        const handle = handlerFor(g.types, persons, g.linkedMax);
        for (const person of persons) {
          for (const [id, t] of person) {
            for (const query of ['', '&view=flat', '&fields=segments&segmentFields=name']) {
              const path = `/?id=${encodeURIComponent(id)}&type=t${t}${query}`;
              const res = await handle(httpEvent(path), {});
              expect(res.statusCode).toBe(200);
              const entries = strictEntries(resultText(res));
              expect(entries[0]?.[0]).toBe(id);
              expect(entries).toHaveLength(Math.min(person.length, g.linkedMax + 1));
              if (query !== '') continue;
              for (const [key, entry] of entries.slice(1)) {
                const written = entry as Map<string, unknown>;
                const type = written.get('type') as string;
                expect(key === idOf(written) || key.startsWith(`${type}:`)).toBe(true);
              }
            }
          }
        }
        const ids = persons.flat().map(([id, t]) => ({ id, type: `t${t}` }));
        const event = {
          ...httpEvent('/profiles:batchGet', 'POST', { 'content-type': 'application/json' }),
          body: JSON.stringify({ ids }),
        };
        const batch = await handle(event, {});
        expect(batch.statusCode).toBe(200);
        parseStrictJson(resultText(batch));
      }),
      { numRuns: 150 },
    );
  });

  it('are checked by a parser that does see a repeated key', () => {
    expect(() => parseStrictJson('{"a":{"x":1},"a":{"x":2}}')).toThrow(DuplicateKeyError);
    expect(() => parseStrictJson('[{"b":1,"c":{"d":1,"d":2}}]')).toThrow(DuplicateKeyError);
    fc.assert(
      fc.property(fc.json(), (text) => {
        expect(toPlain(parseStrictJson(text))).toEqual(JSON.parse(text));
      }),
    );
  });
});

/** The id an entry was written for, from its `n` attribute (`<type>/<id>`, see handlerFor). */
function idOf(entry: Map<string, unknown>): string {
  const n = (entry.get('attributes') as Map<string, unknown>).get('n') as string;
  return n.slice(n.indexOf('/') + 1);
}

/** parseStrictJson's Maps turned back into plain objects, to compare with JSON.parse. */
function toPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Map) {
    return Object.fromEntries([...value].map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}

describe('the key of an entry whose id text an earlier entry has', () => {
  const type = (name: string) => ({
    name,
    code: name,
    pattern: /./,
    normalise: 'none' as const,
    keyType: 'string' as const,
  });
  const entry = (id: string, t: string) => ({ id, type: type(t), bins: undefined });

  it('is the bare id for every entry when no text repeats (no keys computed)', () => {
    expect(answerKeys([entry('a', 'ios'), entry('b', 'android')])).toBeUndefined();
  });

  it('is <type name>:<id> after the first, then #2, #3 when even that is taken', () => {
    const keys = answerKeys([
      entry('a', 'ios'),
      entry('android:a', 'email'),
      entry('a', 'android'),
      entry('a', 'email'),
      entry('email:a', 'ios'),
    ]);
    expect(keys).toEqual(['a', 'android:a', 'android:a#2', 'email:a', 'ios:email:a']);
  });
});
