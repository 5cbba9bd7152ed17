import { ByteWriter } from '../../shared/byte-writer.js';

/** What `write` puts into a fresh ByteWriter, as text (its pooled buffer handed back). */
export function written(write: (out: ByteWriter) => void): string {
  const out = new ByteWriter();
  write(out);
  const taken = out.take();
  const text = taken.bytes.toString('utf8');
  taken.release();
  return text;
}
