import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { stallGuard } from '../../shared/streams.js';

const IDLE_MS = 120;
const stalled = () => new Error('stalled');

/** A consumer that takes each chunk `delayMs` after the previous one: behind its source. */
function slowConsumer(delayMs: number) {
  const received: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, done) {
      received.push(chunk);
      setTimeout(done, delayMs);
    },
  });
  return { sink, received };
}

describe('stallGuard', () => {
  it('is not a stall while the source delivered and the consumer is the slow one', async () => {
    const source = new PassThrough();
    // Everything arrives at once; the consumer then needs 3 x IDLE_MS per chunk.
    const chunks = Array.from({ length: 4 }, (_, i) => Buffer.alloc(64 * 1024, i));
    for (const c of chunks) source.write(c);
    source.end();
    const { sink, received } = slowConsumer(3 * IDLE_MS);
    await pipeline(source, stallGuard(IDLE_MS, stalled), sink);
    expect(Buffer.concat(received)).toEqual(Buffer.concat(chunks));
  });

  it('fails within about its idle time when the source stops sending', async () => {
    const source = new PassThrough();
    source.write(Buffer.from('some bytes, then nothing'));
    const { sink } = slowConsumer(0);
    const started = performance.now();
    const err = await pipeline(source, stallGuard(IDLE_MS, stalled), sink).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('stalled');
    expect(performance.now() - started).toBeLessThan(IDLE_MS * 10);
  });
});
