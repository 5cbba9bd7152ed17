import { SnapshotIntegrityError, SnapshotTooLargeError } from '../errors.js';
import type { IdTypeRegistry } from '../id-types.js';
import type {
  Decoded,
  DecodeHint,
  RowCounter,
  SnapshotCodec,
} from '../snapshots/snapshot-codec.js';
import { CompactIndexSize, CompactMappingIndexBuilder } from './compact-mapping-index.js';
import type { MappingIndex } from './mapping-index.js';

/** One person of the identity mapping: the ids that belong to them, each with its type code. */
export type MappingPerson = ReadonlyArray<{ readonly id: string; readonly typeCode: string }>;

const ENCODE_CHUNK_CHARS = 64 * 1024;
const LF = 0x0a;
const CR = 0x0d;

/**
 * The mapping snapshot: gzip NDJSON, one line per person holding a flat JSON array
 * `["id1","111111","id2","222222"]`. Rows are ids, so the manifest's row count can be
 * compared with the source table's. Decoding builds the compact index straight from the bytes;
 * ids of a type code the registry does not know are counted and skipped (the registry may have
 * dropped a type), and a line that is not such an array rejects the whole snapshot.
 */
export function mappingCodec(registry: IdTypeRegistry): SnapshotCodec<MappingPerson, MappingIndex> {
  return {
    kind: 'mapping',
    extension: 'ndjson.gz',

    async *encode(persons, counter: RowCounter) {
      // Lines are batched into chunks: one stream chunk per person would cost more in stream
      // and gzip bookkeeping than the encoding itself.
      let chunk = '';
      const size = new CompactIndexSize();
      for await (const person of persons) {
        if (person.length === 0) continue;
        const flat: string[] = [];
        const ids: string[] = [];
        for (const { id, typeCode } of person) {
          flat.push(id, typeCode);
          ids.push(id);
        }
        size.addPerson(ids);
        counter.memoryBytes = size.bytes;
        counter.rows += person.length;
        chunk += `${JSON.stringify(flat)}\n`;
        if (chunk.length >= ENCODE_CHUNK_CHARS) {
          yield chunk;
          chunk = '';
        }
      }
      if (chunk.length > 0) yield chunk;
    },

    async decode(text, hint?: DecodeHint): Promise<Decoded<MappingIndex>> {
      const builder = new CompactMappingIndexBuilder(
        registry,
        hint && { ids: hint.rows, memoryBytes: hint.memoryBytes },
        hint?.maxMemoryBytes ?? 0,
      );
      let rows = 0;
      let lineNo = 0;
      const add = (buf: Buffer, start: number, end: number) => {
        const stop = buf[end - 1] === CR ? end - 1 : end;
        if (stop <= start) return;
        lineNo++;
        try {
          rows += builder.addLine(buf, start, stop);
        } catch (err) {
          if (err instanceof SnapshotTooLargeError) throw err;
          const reason = err instanceof Error ? err.message : String(err);
          throw new SnapshotIntegrityError(`mapping line ${lineNo}: ${reason}`, { cause: err });
        }
      };
      // Lines are read in place from each chunk; only a line cut by a chunk boundary is copied.
      let rest: Buffer | undefined;
      for await (const chunk of text) {
        let start = 0;
        if (rest) {
          const nl = chunk.indexOf(LF);
          if (nl < 0) {
            rest = Buffer.concat([rest, chunk]);
            continue;
          }
          const line = Buffer.concat([rest, chunk.subarray(0, nl)]);
          add(line, 0, line.length);
          start = nl + 1;
          rest = undefined;
        }
        for (let nl = chunk.indexOf(LF, start); nl >= 0; nl = chunk.indexOf(LF, start)) {
          add(chunk, start, nl);
          start = nl + 1;
        }
        if (start < chunk.length) rest = Buffer.from(chunk.subarray(start));
      }
      if (rest) add(rest, 0, rest.length);
      return { value: builder.build(), rows };
    },
  };
}
