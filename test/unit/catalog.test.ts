import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { Catalog, type CatalogView } from '../../shared/catalog/catalog.js';
import type { Segment } from '../../shared/catalog/segment.js';
import { written } from '../helpers/written.js';

const segment = (id: string) => ({ id, name: `n${id}`, type: 't' });
const json = (id: string) => JSON.stringify(segment(id));

describe('catalog lookups by the id as a record holds it', () => {
  const catalog = new Catalog(
    ['5', '0', '-3', '4000000000', 'abc', '007', '9007199254740993'].map(segment),
  );

  it('finds integer ids as numbers and as text, inside and outside the dense range', () => {
    for (const id of [5, '5', 0, '0', -3, '-3', 4_000_000_000, '4000000000']) {
      expect(catalog.find(id)?.bytes.toString()).toBe(json(String(id)));
    }
  });

  it('finds other ids as text only, as they are written', () => {
    expect(catalog.find('abc')?.bytes.toString()).toBe(json('abc'));
    expect(catalog.find('007')?.bytes.toString()).toBe(json('007'));
    expect(catalog.find(7)).toBeUndefined();
    expect(catalog.find('9007199254740993')?.bytes.toString()).toBe(json('9007199254740993'));
  });

  it('knows nothing of ids it does not hold, fractions or negative zero aside', () => {
    for (const id of [4, 6, 1, 5.5, -1, 2 ** 31, '4', ' 5', '5 ', '']) {
      expect(catalog.find(id)).toBeUndefined();
    }
    expect(catalog.find(-0)?.bytes.toString()).toBe(json('0'));
  });

  it('answers the same through a field selection, with and without the list comma', () => {
    const view = catalog.view(['id', 'type']);
    const at = view.positionOf(4_000_000_000);
    expect(written((out) => view.write(out, at, true))).toBe('{"id":"4000000000","type":"t"}');
    expect(written((out) => view.write(out, at, false))).toBe(',{"id":"4000000000","type":"t"}');
    expect(view.types[at]).toBe('t');
    expect(view.positionOf(6)).toBe(-1);
  });
});

describe('catalogs whose integer ids are sparse', () => {
  it('finds every id when a table indexed by id would be mostly empty', () => {
    const catalog = new Catalog(['1', '3999999', '70000', '65535'].map(segment));
    for (const id of [1, 3_999_999, 70_000, 65_535]) {
      expect(catalog.find(id)?.bytes.toString()).toBe(json(String(id)));
    }
    expect(catalog.find(2)).toBeUndefined();
    expect(catalog.find(3_999_998)).toBeUndefined();
  });

  it('keeps the first definition of a repeated id', () => {
    const catalog = new Catalog([
      { id: '9', name: 'first' },
      { id: '9', name: 'second' },
    ]);
    expect(catalog.size).toBe(1);
    expect(catalog.find(9)?.bytes.toString()).toBe('{"id":"9","name":"first"}');
  });
});

/** A segment list as an answer writes it through `view`. */
function list(view: CatalogView, ids: readonly string[]): string {
  return written((out) => {
    out.text('[');
    ids.forEach((id, i) => {
      view.write(out, view.positionOf(id), i === 0);
    });
    out.text(']');
  });
}

describe('segments written for a field selection', () => {
  const fieldName = fc.constantFrom(
    'id',
    'name',
    'type',
    'size',
    'cpm',
    '__proto__',
    'é',
    '"q"',
    '7',
    'a\\b',
  );
  const anySegment = fc
    .tuple(fc.dictionary(fieldName, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 8 }), fc.string())
    .map(([fields, name]): Segment => ({ ...JSON.parse(JSON.stringify(fields)), name }));

  it('are byte for byte what JSON.stringify gives of the selected fields, for any catalog', () => {
    fc.assert(
      fc.property(
        fc.array(anySegment, { minLength: 1, maxLength: 8 }),
        fc.uniqueArray(fieldName, { minLength: 1, maxLength: 10 }),
        (raw, fields) => {
          const segments = raw.map((s, i) => ({ ...s, id: `s${i}` }));
          const catalog = new Catalog(segments);
          const ids = segments.map((s) => s.id);
          const wanted = new Set<string>(fields);
          const picked = segments.map((s) =>
            Object.fromEntries(Object.entries(s).filter(([name]) => wanted.has(name))),
          );
          expect(list(catalog.view(fields), ids)).toBe(JSON.stringify(picked));
          expect(list(catalog.view(undefined), ids)).toBe(JSON.stringify(segments));
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('cost the names given and the segments written, whatever the size of the catalog', () => {
    const fields = ['id', 'name', 'type', 'size', 'provider', 'cpm', 'reach', 'updated'];
    const segments = Array.from({ length: 50_000 }, (_, i) => ({
      id: String(i),
      name: `segment-${i}`,
      type: 't',
      size: i,
      provider: 'p',
      cpm: 1.5,
      reach: 0.1,
      updated: 'today',
    }));
    const catalog = new Catalog(segments);
    // Every one of the 255 selections of 8 fields, again and again. Encoding a selection for the
    // whole catalog (what a cache of selections did) calls JSON.stringify per segment: 50,000
    // calls for each new selection. Writing from the catalog's one encoding calls it never.
    const stringify = vi.spyOn(JSON, 'stringify');
    const answers: string[] = [];
    try {
      for (let round = 0; round < 2; round++) {
        for (let mask = 1; mask < 256; mask++) {
          const view = catalog.view(fields.filter((_, bit) => mask & (1 << bit)));
          answers.push(written((out) => view.write(out, view.positionOf(mask), true)));
        }
      }
      expect(stringify).not.toHaveBeenCalled();
    } finally {
      stringify.mockRestore();
    }
    for (let mask = 1; mask < 256; mask++) {
      const chosen = new Set(fields.filter((_, bit) => mask & (1 << bit)));
      const segment = Object.entries(segments[mask] as object);
      const expected = JSON.stringify(Object.fromEntries(segment.filter(([f]) => chosen.has(f))));
      expect(answers[mask - 1]).toBe(expected);
      expect(answers[mask + 254]).toBe(expected);
    }
  });
});
