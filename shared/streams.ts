import { createHash, type Hash } from 'node:crypto';
import { type Readable, Transform } from 'node:stream';
import { runningTicks } from './deadline.js';

/** Bytes seen by a digest tap: their count and, once the stream ends, their sha256. */
export interface DigestTap {
  readonly stream: Transform;
  bytes(): number;
  sha256(): string;
}

/** A pass-through that counts and hashes what flows through it. */
export function digestTap(): DigestTap {
  const hash: Hash = createHash('sha256');
  let bytes = 0;
  let digest: string | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return {
    stream,
    bytes: () => bytes,
    sha256: () => {
      digest ??= hash.digest('hex');
      return digest;
    },
  };
}

/**
 * A pass-through that fails with `makeError()` when no data arrives for `idleMs` of the
 * process's running time (see runningTicks): a download that stalls must not hold a refresh (or
 * a job) forever, and one frozen with its CPU must not fail on wake-up. Before failing it lets
 * pending I/O run once, so data that was already there counts as progress.
 */
export function stallGuard(idleMs: number, makeError: () => Error): Transform {
  let idle = 0;
  let progress = 0;
  let confirming = false;
  const tick = (elapsedMs: number) => {
    // Data waiting in the guard (the consumer is behind, e.g. a CPU-starved decoder holding the
    // pipeline back) is progress of the download: only an empty, waiting guard runs idle.
    if (stream.writableLength > 0 || stream.readableLength > 0) {
      idle = 0;
      return;
    }
    idle += elapsedMs;
    if (idle < idleMs || confirming) return;
    confirming = true;
    const seen = progress;
    setImmediate(() => {
      confirming = false;
      if (progress === seen && !stream.destroyed) stream.destroy(makeError());
    });
  };
  const stop = () => clearInterval(timer);
  const stream: Transform = new Transform({
    transform(chunk: Buffer, _enc, done) {
      progress++;
      idle = 0;
      done(null, chunk);
    },
    flush(done) {
      stop();
      done();
    },
    destroy(err, done) {
      stop();
      done(err);
    },
  });
  const timer = runningTicks(idleMs, tick);
  timer.unref();
  return stream;
}

/**
 * Pipes `source` through `stages` and returns the last one; an error anywhere destroys the
 * whole chain, so a consumer of the result sees the first failure instead of hanging.
 */
export function chain(source: Readable, ...stages: Transform[]): Readable {
  const all: (Readable | Transform)[] = [source, ...stages];
  const last = all[all.length - 1] as Readable;
  let failed = false;
  const fail = (err: Error) => {
    if (failed) return;
    failed = true;
    for (const s of all) if (s !== last) s.destroy();
    last.destroy(err);
  };
  let previous: Readable = source;
  for (const stage of stages) {
    previous.pipe(stage);
    previous = stage;
  }
  for (const s of all) s.on('error', fail);
  return last;
}
