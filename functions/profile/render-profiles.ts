import { ByteWriter, type PooledBytes } from '../../shared/byte-writer.js';
import type { CatalogView } from '../../shared/catalog/catalog.js';
import { forEachLiveSegment, type SegmentVisitor } from '../../shared/profiles/profile-bins.js';
import { answerKeys } from './answer-keys.js';
import type { ProfileEntry } from './lookup-plan.js';
import { writeAttributeMembers } from './render-attributes.js';

/** Which parts of each profile an answer carries (`type` and `found` always come). */
export interface ProfileFields {
  readonly attributes: boolean;
  readonly segments: boolean;
  readonly unknownSegmentIds: boolean;
}

/** How to render one answer: the selection the request asked for, and the data to join. */
export interface RenderOptions {
  /** The catalog as the requested segment fields select it. */
  readonly catalog: CatalogView;
  readonly segmentsBin: string;
  readonly nowSecs: number;
  readonly fields: ProfileFields;
  /** Keep only segments of these types (undefined: all). */
  readonly segmentTypes: ReadonlySet<string> | undefined;
  /** The original service's format: attributes at the top level of each id's object. */
  readonly flat: boolean;
  /** Flat view: the names our members take, left out of the attributes (undefined: full view). */
  readonly flatReserved: ReadonlySet<string> | undefined;
}

const COMMA = Buffer.from(',');
const CLOSE = Buffer.from('}');
const ATTRIBUTES = Buffer.from(',"attributes":{');
const SEGMENTS = Buffer.from(',"segments":[');
const CLOSE_LIST = Buffer.from(']');
const UNKNOWN = Buffer.from(',"unknownSegmentIds":');
const NO_IDS = Buffer.from('[]');
const OPEN_LIST = Buffer.from('[');

/** `:{"type":<name>,"found":true|false` per id type name, encoded once (the registry's few). */
const ENTRY_HEADS = new Map<string, readonly [found: Buffer, missing: Buffer]>();

function entryHead(typeName: string, found: boolean): Buffer {
  let heads = ENTRY_HEADS.get(typeName);
  if (heads === undefined) {
    const type = JSON.stringify(typeName);
    heads = [
      Buffer.from(`:{"type":${type},"found":true`),
      Buffer.from(`:{"type":${type},"found":false`),
    ];
    ENTRY_HEADS.set(typeName, heads);
  }
  return found ? heads[0] : heads[1];
}

/**
 * The answer's body: an object keyed by user id, requested id first (see answerKeys for two
 * entries of one id text). Built as bytes, not as a
 * JS object (which would reorder integer-like keys, i.e. numeric ids, and treat `__proto__` as
 * special): each segment's metadata is copied in as the JSON bytes the catalog encoded once for
 * this field selection, in one pass over each record's segments.
 */
export function renderProfiles(
  entries: readonly ProfileEntry[],
  options: RenderOptions,
): PooledBytes {
  return renderProfilesInto(new ByteWriter(), entries, options).take();
}

/**
 * Where each profile of a batch's answer was first written in it: a profile that several
 * results hold (a repeated id, or members of one person) is rendered once and copied after.
 * Valid for one ByteWriter, as long as nothing before the spans it holds is dropped.
 */
export class WrittenProfiles {
  private readonly spans = new Map<string, readonly [start: number, end: number]>();

  /** Writes `entry`'s value (what follows its key) into `out`, or a copy of it. */
  write(out: ByteWriter, entry: ProfileEntry, options: RenderOptions): void {
    const key = `${entry.type.code}\u0000${entry.id}`;
    const span = this.spans.get(key);
    if (span !== undefined) {
      out.repeat(span[0], span[1]);
      return;
    }
    const start = out.length;
    writeEntryValue(out, entry, options);
    this.spans.set(key, [start, out.length]);
  }
}

/**
 * Appends the answer's body to `out` (a batch writes several into one body, with `written`
 * shared by all of them).
 */
export function renderProfilesInto(
  out: ByteWriter,
  entries: readonly ProfileEntry[],
  options: RenderOptions,
  written?: WrittenProfiles,
): ByteWriter {
  out.text('{');
  const keys = answerKeys(entries);
  for (let i = 0; i < entries.length; i++) {
    if (i > 0) out.bytes(COMMA);
    const entry = entries[i] as ProfileEntry;
    out.jsonString(keys === undefined ? entry.id : (keys[i] as string));
    if (written) written.write(out, entry, options);
    else writeEntryValue(out, entry, options);
  }
  return out.text('}');
}

/** `:{...}`: one profile after its key, in the view the request asked for. */
function writeEntryValue(out: ByteWriter, entry: ProfileEntry, options: RenderOptions): void {
  if (options.flat) flatEntry(out, entry, options);
  else fullEntry(out, entry, options);
}

// Each piece goes straight into the answer's buffer, constants as bytes encoded once: no string
// is built per entry only to be copied again.
function fullEntry(out: ByteWriter, entry: ProfileEntry, options: RenderOptions): void {
  const { fields } = options;
  const bins = entry.bins;
  out.bytes(entryHead(entry.type.name, bins !== undefined));
  if (fields.attributes) {
    out.bytes(ATTRIBUTES);
    if (bins) writeAttributeMembers(out, bins, options.segmentsBin);
    out.bytes(CLOSE);
  }
  if (fields.segments || fields.unknownSegmentIds) {
    if (fields.segments) out.bytes(SEGMENTS);
    const list = segmentsInto(fields.segments ? out : undefined, entry, options);
    if (fields.segments) out.bytes(CLOSE_LIST);
    if (fields.unknownSegmentIds) list.writeUnknown(out.bytes(UNKNOWN));
  }
  out.bytes(CLOSE);
}

/** What the original service's flat view puts beside the attributes (ours win a name clash). */
function flatEntry(out: ByteWriter, entry: ProfileEntry, options: RenderOptions): void {
  const { fields } = options;
  const bins = entry.bins;
  out.text(':{');
  let first = true;
  if (fields.attributes && bins) {
    first = writeAttributeMembers(out, bins, options.segmentsBin, options.flatReserved) === 0;
  }
  if (fields.segments || fields.unknownSegmentIds) {
    if (fields.segments) out.text(first ? '"segments":[' : ',"segments":[');
    const list = segmentsInto(fields.segments ? out : undefined, entry, options);
    if (fields.segments) out.text(']');
    if (fields.unknownSegmentIds) {
      out.text(first && !fields.segments ? '"unknownSegmentIds":' : ',"unknownSegmentIds":');
      list.writeUnknown(out);
    }
  }
  out.bytes(CLOSE);
}

/**
 * Copies the record's live, known segments (of the wanted types) into `out`, comma-separated;
 * the list it returns keeps the ids the catalog does not know.
 */
function segmentsInto(
  out: ByteWriter | undefined,
  entry: ProfileEntry,
  options: RenderOptions,
): SegmentList {
  const list = new SegmentList(out, options);
  if (entry.bins) forEachLiveSegment(entry.bins[options.segmentsBin], options.nowSecs, list);
  return list;
}

/** One record's segment list as it is written: known segments copied, unknown ids kept. */
class SegmentList implements SegmentVisitor {
  private count = 0;
  private unknown: string[] | undefined;
  private readonly catalog: CatalogView;
  private readonly segmentTypes: ReadonlySet<string> | undefined;

  constructor(
    private readonly out: ByteWriter | undefined,
    options: RenderOptions,
  ) {
    this.catalog = options.catalog;
    this.segmentTypes = options.segmentTypes;
  }

  segment(id: string | number): void {
    const catalog = this.catalog;
    const at = catalog.positionOf(id);
    if (at < 0) {
      this.unknown ??= [];
      this.unknown.push(String(id));
      return;
    }
    if (this.out === undefined) return;
    const types = this.segmentTypes;
    if (types !== undefined) {
      const type = catalog.types[at];
      if (type === undefined || !types.has(type)) return;
    }
    catalog.write(this.out, at, this.count++ === 0);
  }

  /** Writes the ids the catalog does not know, as a JSON array of strings. */
  writeUnknown(out: ByteWriter): void {
    const unknown = this.unknown;
    if (unknown === undefined) {
      out.bytes(NO_IDS);
      return;
    }
    for (let i = 0; i < unknown.length; i++) {
      out.bytes(i === 0 ? OPEN_LIST : COMMA).jsonString(unknown[i] as string);
    }
    out.bytes(CLOSE_LIST);
  }
}
