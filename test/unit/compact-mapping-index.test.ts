import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import { type MappingPerson, mappingCodec } from '../../shared/mapping/mapping-codec.js';

const registry = defaultIdTypeRegistry();
const codec = mappingCodec(registry);
const KNOWN = new Set(registry.all.map((t) => t.code));

/**
 * The obvious model: a Map from (type, id) to its person's ids; the first person wins a pair.
 * The same text under two types is two ids, as the profile store keys them.
 */
function naiveIndex(persons: MappingPerson[]) {
  const key = (id: string, typeCode: string) => `${typeCode}\u0000${id}`;
  const owner = new Map<string, number>();
  const members: { id: string; typeCode: string }[][] = persons.map(() => []);
  persons.forEach((person, p) => {
    for (const { id, typeCode } of person) {
      const reachable = /^[\x21-\x7e]+$/.test(id);
      if (!KNOWN.has(typeCode) || !reachable || owner.has(key(id, typeCode))) continue;
      owner.set(key(id, typeCode), p);
      members[p]?.push({ id, typeCode });
    }
  });
  return (id: string, typeCode: string, max: number) => {
    const person = owner.get(key(id, typeCode));
    if (person === undefined) return undefined;
    const others = (members[person] ?? []).filter((m) => m.id !== id || m.typeCode !== typeCode);
    return { typeCode, linked: others.slice(0, max), linkedTotal: others.length };
  };
}

async function encode(persons: MappingPerson[]): Promise<Buffer> {
  let text = '';
  for await (const chunk of codec.encode(persons, { rows: 0 })) text += chunk;
  return Buffer.from(text);
}

/** Cuts bytes at the given points, so lines straddle chunk boundaries. */
function chunks(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const to of [...points, bytes.length]) {
    if (to > from) out.push(bytes.subarray(from, to));
    from = to;
  }
  return out;
}

const idArb = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'toString', 'a"b', 'back\\slash', 'sp ace', 'é', 'x'),
  // A small pool, so that the same text often appears under several types and persons.
  fc.constantFrom('1234567890', 'abcdef12', 'ABCDEF12', '00ff'),
  fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/),
  fc.string({ minLength: 1, maxLength: 8 }),
);
const personArb = fc.array(
  fc.record({
    id: idArb,
    typeCode: fc.constantFrom('111111', '222222', '333333', '444444', '999999'),
  }),
  { minLength: 1, maxLength: 6 },
);

describe('compact mapping index', () => {
  it('answers every lookup exactly as a naive Map would', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(personArb, { maxLength: 60 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(idArb, { maxLength: 10 }),
        fc.integer({ min: 0, max: 7 }),
        async (persons, cuts, probes, max) => {
          const bytes = await encode(persons);
          const { value, rows } = await codec.decode(chunks(bytes, cuts));
          expect(rows).toBe(persons.reduce((n, p) => n + p.length, 0));
          const naive = naiveIndex(persons);
          for (const id of [...persons.flat().map((e) => e.id), ...probes]) {
            for (const typeCode of [...KNOWN, '999999']) {
              expect(value.lookup(id, typeCode, max)).toEqual(naive(id, typeCode, max));
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('holds a large mapping in a few typed arrays', async () => {
    const persons: MappingPerson[] = Array.from({ length: 20_000 }, (_, i) => [
      { id: `${i.toString(16).padStart(8, '0')}-aaaa-4aaa-8aaa-aaaaaaaaaaaa`, typeCode: '222222' },
      { id: String(1_000_000 + i), typeCode: '444444' },
    ]);
    const { value } = await codec.decode([await encode(persons)]);
    expect(value.idCount).toBe(40_000);
    expect(value.personCount).toBe(20_000);
    expect(value.lookup('1019999', '444444', 5)).toEqual({
      typeCode: '444444',
      linked: [{ id: '00004e1f-aaaa-4aaa-8aaa-aaaaaaaaaaaa', typeCode: '222222' }],
      linkedTotal: 1,
    });
    const bytes = (value as unknown as { byteSize: number }).byteSize;
    expect(bytes / value.idCount).toBeLessThan(60);
  });
});
