import { SnapshotIntegrityError } from '../errors.js';
import type { IdTypeRegistry } from '../id-types.js';
import type { Decoded, RowCounter, SnapshotCodec } from '../snapshots/snapshot-codec.js';
import { textLines } from '../text-lines.js';
import type { MappingIndex, MappingIndexBuilder } from './mapping-index.js';

/** One person of the identity mapping: the ids that belong to them, each with its type code. */
export type MappingPerson = ReadonlyArray<{ readonly id: string; readonly typeCode: string }>;

const ENCODE_CHUNK_CHARS = 64 * 1024;

/** Longest id accepted in a mapping snapshot; longer ones cannot be a valid request either. */
const MAX_MAPPING_ID_LENGTH = 1024;

/** Counters of what a decode skipped without rejecting the snapshot. */
export interface MappingDecodeStats {
  unknownTypeIds: number;
}

/**
 * The mapping snapshot: gzip NDJSON, one line per person holding a flat JSON array
 * `["id1","111111","id2","222222"]`. Rows are ids, so the manifest's row count can be
 * compared with the source table's. Ids of a type code the registry does not know are counted
 * and skipped (the registry may have dropped a type); a line that is not such an array
 * rejects the whole snapshot.
 */
export function mappingCodec(
  registry: IdTypeRegistry,
  newBuilder: () => MappingIndexBuilder,
  stats: MappingDecodeStats = { unknownTypeIds: 0 },
): SnapshotCodec<MappingPerson, MappingIndex> {
  return {
    kind: 'mapping',
    extension: 'ndjson.gz',

    async *encode(persons, counter: RowCounter) {
      // Lines are batched into chunks: one stream chunk per person would cost more in stream
      // and gzip bookkeeping than the encoding itself.
      let chunk = '';
      for await (const person of persons) {
        if (person.length === 0) continue;
        const flat: string[] = [];
        for (const { id, typeCode } of person) flat.push(id, typeCode);
        counter.rows += person.length;
        chunk += `${JSON.stringify(flat)}\n`;
        if (chunk.length >= ENCODE_CHUNK_CHARS) {
          yield chunk;
          chunk = '';
        }
      }
      if (chunk.length > 0) yield chunk;
    },

    async decode(text): Promise<Decoded<MappingIndex>> {
      const builder = newBuilder();
      let rows = 0;
      let lineNo = 0;
      for await (const line of textLines(text)) {
        lineNo++;
        const flat = parseLine(line, lineNo);
        rows += flat.length / 2;
        let kept = flat;
        for (let i = 1; i < flat.length; i += 2) {
          if (registry.byCode(flat[i] as string) === undefined) {
            kept = dropUnknownTypes(flat, registry, stats);
            break;
          }
        }
        builder.addPerson(kept);
      }
      return { value: builder.build(), rows };
    },
  };
}

function parseLine(line: string, lineNo: number): string[] {
  let flat: unknown;
  try {
    flat = JSON.parse(line);
  } catch (err) {
    throw new SnapshotIntegrityError(`mapping line ${lineNo} is not JSON`, { cause: err });
  }
  if (!Array.isArray(flat) || flat.length === 0 || flat.length % 2 !== 0) {
    throw new SnapshotIntegrityError(`mapping line ${lineNo} is not a list of id, type pairs`);
  }
  for (const item of flat) {
    if (typeof item !== 'string' || item.length === 0 || item.length > MAX_MAPPING_ID_LENGTH) {
      throw new SnapshotIntegrityError(`mapping line ${lineNo} holds a bad id or type`);
    }
  }
  return flat as string[];
}

function dropUnknownTypes(
  flat: readonly string[],
  registry: IdTypeRegistry,
  stats: MappingDecodeStats,
): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (registry.byCode(flat[i + 1] as string) === undefined) stats.unknownTypeIds++;
    else kept.push(flat[i] as string, flat[i + 1] as string);
  }
  return kept;
}
