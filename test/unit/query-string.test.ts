import { describe, expect, it } from 'vitest';
import { parseQueryString } from '../../shared/http/query-string.js';

describe('parseQueryString', () => {
  it.each([
    ['', []],
    ['id=abc', [['id', ['abc']]]],
    ['id=a&id=b', [['id', ['a', 'b']]]],
    ['id=a+b', [['id', ['a b']]]],
    ['id=a%2Bb', [['id', ['a+b']]]],
    ['id', [['id', ['']]]],
    [
      'id=&type=x',
      [
        ['id', ['']],
        ['type', ['x']],
      ],
    ],
    ['&&id=a&', [['id', ['a']]]],
    ['id=a=b', [['id', ['a=b']]]],
    [
      'id[]=a&id[x]=b',
      [
        ['id[]', ['a']],
        ['id[x]', ['b']],
      ],
    ],
    [
      '__proto__=x&constructor=y',
      [
        ['__proto__', ['x']],
        ['constructor', ['y']],
      ],
    ],
    ['%C3%A9=%E2%9C%93', [['é', ['✓']]]],
  ])('%s', (raw, expected) => {
    expect([...(parseQueryString(raw) ?? new Map())]).toEqual(expected);
  });

  it.each(['id=%', 'id=%G1', 'id=%E0%A4%A', '%ZZ=1', 'id=%C3'])('refuses %s', (raw) => {
    expect(parseQueryString(raw)).toBeUndefined();
  });
});
