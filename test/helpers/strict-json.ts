const SCALAR = /true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Thrown by parseStrictJson for an object that names a key twice. */
export class DuplicateKeyError extends Error {
  override readonly name = 'DuplicateKeyError';
}

/**
 * JSON.parse that refuses an object holding the same key twice (JSON.parse keeps the last one
 * silently, so tests that parse answers with it cannot see a duplicate). Objects come back as
 * Maps, in text order, so key order can be checked too.
 */
export function parseStrictJson(text: string): unknown {
  let at = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at ${at}`);
  };
  const space = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at] as string)) at++;
  };
  const string = (): string => {
    const start = at;
    at++;
    while (text[at] !== '"') {
      if (at >= text.length) fail('unterminated string');
      at += text[at] === '\\' ? 2 : 1;
    }
    at++;
    return JSON.parse(text.slice(start, at)) as string;
  };
  const value = (): unknown => {
    space();
    const c = text[at];
    if (c === '{') {
      at++;
      const members = new Map<string, unknown>();
      space();
      if (text[at] === '}') {
        at++;
        return members;
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail('expected a key');
        const key = string();
        if (members.has(key)) throw new DuplicateKeyError(`duplicate key ${JSON.stringify(key)}`);
        space();
        if (text[at++] !== ':') fail('expected :');
        members.set(key, value());
        space();
        const next = text[at++];
        if (next === '}') return members;
        if (next !== ',') fail('expected , or }');
      }
    }
    if (c === '[') {
      at++;
      const items: unknown[] = [];
      space();
      if (text[at] === ']') {
        at++;
        return items;
      }
      for (;;) {
        items.push(value());
        space();
        const next = text[at++];
        if (next === ']') return items;
        if (next !== ',') fail('expected , or ]');
      }
    }
    if (c === '"') return string();
    SCALAR.lastIndex = at;
    const scalar = SCALAR.exec(text);
    if (!scalar) return fail('unexpected character');
    at += scalar[0].length;
    return JSON.parse(scalar[0]);
  };
  const result = value();
  space();
  if (at !== text.length) fail('trailing text');
  return result;
}
