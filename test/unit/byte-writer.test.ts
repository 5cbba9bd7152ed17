import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../../shared/byte-writer.js';
import { written } from '../helpers/written.js';

describe('JSON string literals written by ByteWriter', () => {
  it('are byte for byte what JSON.stringify gives, for any string', () => {
    const anyString = fc.oneof(
      fc.string({ unit: 'grapheme-ascii', maxLength: 140 }),
      fc.string({ unit: 'binary', maxLength: 140 }),
      // Lone surrogates: JSON.stringify escapes them; they must not reach the bytes raw.
      fc
        .array(fc.integer({ min: 0xd7f0, max: 0xe010 }), { maxLength: 6 })
        .map((codes) => String.fromCharCode(...codes)),
      fc.constantFrom('', '"', '\\', '\u007f', '\u0000', 'a\nb', 'é', '__proto__'),
    );
    fc.assert(
      fc.property(anyString, anyString, (a, b) => {
        const text = written((out) => out.text('[').jsonString(a).text(',').jsonString(b));
        expect(text).toBe(`[${JSON.stringify(a)},${JSON.stringify(b)}`);
      }),
      { numRuns: 2_000 },
    );
  });

  it('grow the buffer when an answer outgrows it, keeping what was written', () => {
    const value = 'x'.repeat(100);
    const text = written((out) => {
      for (let i = 0; i < 2_000; i++) out.jsonString(value).bytes(Buffer.from(','));
    });
    expect(text).toBe(`${JSON.stringify(value)},`.repeat(2_000));
    expect(text.length).toBeGreaterThan(64 * 1024 * 3);
  });
});

describe('byte ranges and single bytes written by ByteWriter', () => {
  it('append exactly the bytes of the range, short (copied byte by byte) or long', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (source, a, b, code) => {
          const buf = Buffer.from(source);
          const start = a % (buf.length + 1);
          const end = start + (b % (buf.length - start + 1));
          const out = new ByteWriter();
          out.byte(code).range(buf, start, end).byte(code);
          const taken = out.take();
          expect([...taken.bytes]).toEqual([code, ...buf.subarray(start, end), code]);
          taken.release();
        },
      ),
      { numRuns: 1_000 },
    );
  });
});

describe('parts of its own output repeated or dropped by ByteWriter', () => {
  it('repeat what was written, even when the buffer grows on the way', () => {
    const out = new ByteWriter();
    const part = 'x'.repeat(50_000);
    out.text('[').text(part);
    const end = out.length;
    out.text(',').repeat(1, end).text(',').repeat(1, end).text(']');
    const taken = out.take();
    expect(taken.bytes.toString()).toBe(`[${part},${part},${part}]`);
    taken.release();
  });

  it('drop what was written after a length, and go on from there', () => {
    const out = new ByteWriter().text('{"a":1');
    const mark = out.length;
    out.text(',"b":2').truncate(mark).text('}');
    const taken = out.take();
    expect(taken.bytes.toString()).toBe('{"a":1}');
    taken.release();
  });
});
