import { describe, expect, it } from 'vitest';
import { decodeBins } from '../helpers/decode-bins.js';

const NOW = 1_800_000_000;

describe('profile bins', () => {
  it('reads a list of segment ids, numbers or strings', () => {
    expect(
      decodeBins({ segments: [1, '2', 3n, 2n ** 64n, 1.5, null, ''] }, 'segments', NOW).segmentIds,
    ).toEqual([1, '2', 3, '18446744073709551616']);
  });

  it('drops expired entries of a map of segment id -> expiry, keeping 0 as never', () => {
    const map = { '1': NOW - 1, '2': NOW + 1, '3': 0, '4': NOW };
    expect(decodeBins({ segments: map }, 'segments', NOW).segmentIds).toEqual(['2', '3']);
    const jsMap = new Map<unknown, unknown>([
      [5, NOW + 100],
      [6, BigInt(NOW - 100)],
    ]);
    expect(decodeBins({ segments: jsMap }, 'segments', NOW).segmentIds).toEqual([5]);
  });

  it('turns every other bin into a JSON-safe attribute', () => {
    const { attributes } = decodeBins(
      {
        segments: [],
        name: 'x',
        big: 2n ** 64n,
        small: 7n,
        raw: Buffer.from('hi'),
        nested: new Map([['k', [1, Buffer.from([0])]]]),
        nothing: null,
      },
      'segments',
      NOW,
    );
    expect(attributes).toEqual({
      name: 'x',
      big: '18446744073709551616',
      small: 7,
      raw: 'aGk=',
      nested: { k: [1, 'AA=='] },
      nothing: null,
    });
  });

  it('keeps a bin named __proto__ as plain data', () => {
    const bins = JSON.parse('{"__proto__": {"polluted": true}, "segments": []}') as Record<
      string,
      unknown
    >;
    const { attributes } = decodeBins(bins, 'segments', NOW);
    expect(JSON.stringify(attributes)).toBe('{"__proto__":{"polluted":true}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('uses the configured segments bin name', () => {
    const decoded = decodeBins({ segs: [9], segments: 'attr' }, 'segs', NOW);
    expect(decoded).toEqual({ segmentIds: [9], attributes: { segments: 'attr' } });
  });
});
