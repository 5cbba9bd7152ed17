import { describe, expect, it } from 'vitest';
import { Catalog } from '../../shared/catalog/catalog.js';

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
    expect(view.bytes[at]?.toString()).toBe('{"id":"4000000000","type":"t"}');
    expect(view.listed[at]?.toString()).toBe(',{"id":"4000000000","type":"t"}');
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
