import { createHash, type Hash } from 'node:crypto';
import { type Readable, Transform } from 'node:stream';

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
 * A pass-through that fails with `makeError()` when no data arrives for `idleMs`:
 * a download that stalls must not hold a refresh (or a job) forever.
 */
export function stallGuard(idleMs: number, makeError: () => Error): Transform {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stream.destroy(makeError()), idleMs);
    timer.unref();
  };
  const stream: Transform = new Transform({
    transform(chunk: Buffer, _enc, done) {
      arm();
      done(null, chunk);
    },
    flush(done) {
      clearTimeout(timer);
      done();
    },
    destroy(err, done) {
      clearTimeout(timer);
      done(err);
    },
  });
  arm();
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
