import type { SnapshotKind } from './manifest.js';

/** Counts the rows a codec writes, so the manifest can record them. */
export interface RowCounter {
  rows: number;
  /** Estimated in-memory bytes of the decoded value, when the codec can tell. */
  memoryBytes?: number | undefined;
}

/** What a reader knows before decoding (from the manifest), to size its buffers. */
export interface DecodeHint {
  readonly rows: number;
  readonly memoryBytes: number | undefined;
  /** Refuse to grow past this many bytes (0: no limit). */
  readonly maxMemoryBytes: number;
}

/** What a decoded snapshot yields: the in-memory value and how many rows it held. */
export interface Decoded<V> {
  readonly value: V;
  readonly rows: number;
}

/** How one snapshot kind turns source records into bytes and bytes into a ready-to-serve value. */
export interface SnapshotCodec<R, V> {
  readonly kind: SnapshotKind;
  /** File extension of data objects, e.g. `json.gz`. */
  readonly extension: string;
  /** Serialises records as uncompressed text chunks, counting rows into `counter`. */
  encode(records: AsyncIterable<R> | Iterable<R>, counter: RowCounter): AsyncIterable<string>;
  /** Parses uncompressed bytes, validating them; throws SnapshotIntegrityError on bad data. */
  decode(text: AsyncIterable<Buffer> | Iterable<Buffer>, hint?: DecodeHint): Promise<Decoded<V>>;
}
