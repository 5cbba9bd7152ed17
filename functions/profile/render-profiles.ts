import { ByteWriter, type PooledBytes } from '../../shared/byte-writer.js';
import type { CatalogView } from '../../shared/catalog/catalog.js';
import { attributeMembers, forEachLiveSegment } from '../../shared/profiles/profile-bins.js';
import type { ProfileEntry } from './lookup-profiles.js';

/** Which parts of each profile an answer carries (`type` and `found` always come). */
export interface ProfileFields {
  readonly attributes: boolean;
  readonly segments: boolean;
  readonly unknownSegmentIds: boolean;
}

/** How to render one answer: the selection the request asked for, and the data to join. */
export interface RenderOptions {
  /** The catalog encoded for the requested segment fields. */
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

/**
 * The answer's body: an object keyed by user id, requested id first. Built as bytes, not as a
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

/** Appends the answer's body to `out` (a batch writes several into one body). */
export function renderProfilesInto(
  out: ByteWriter,
  entries: readonly ProfileEntry[],
  options: RenderOptions,
): ByteWriter {
  out.text('{');
  for (let i = 0; i < entries.length; i++) {
    if (i > 0) out.bytes(COMMA);
    const entry = entries[i] as ProfileEntry;
    if (options.flat) flatEntry(out, entry, options);
    else fullEntry(out, entry, options);
  }
  return out.text('}');
}

function fullEntry(out: ByteWriter, entry: ProfileEntry, options: RenderOptions): void {
  const { fields } = options;
  const bins = entry.bins;
  // Text goes out in as few writes as the shape allows: each write is a call into the encoder.
  let head = `${JSON.stringify(entry.id)}:{"type":${JSON.stringify(entry.type.name)},"found":${bins ? 'true' : 'false'}`;
  if (fields.attributes) {
    head += `,"attributes":{${bins ? attributeMembers(bins, options.segmentsBin) : ''}}`;
  }
  if (!fields.segments && !fields.unknownSegmentIds) {
    out.text(`${head}}`);
    return;
  }
  if (fields.segments) head += ',"segments":[';
  out.text(head);
  const unknown = segmentsInto(fields.segments ? out : undefined, entry, options);
  let tail = fields.segments ? ']' : '';
  if (fields.unknownSegmentIds) tail += `,"unknownSegmentIds":${unknown}`;
  out.text(`${tail}}`);
}

/** What the original service's flat view puts beside the attributes (ours win a name clash). */
function flatEntry(out: ByteWriter, entry: ProfileEntry, options: RenderOptions): void {
  const { fields } = options;
  const bins = entry.bins;
  out.text(`${JSON.stringify(entry.id)}:{`);
  let first = true;
  if (fields.attributes && bins) {
    const members = attributeMembers(bins, options.segmentsBin, options.flatReserved);
    if (members !== '') {
      out.text(members);
      first = false;
    }
  }
  if (fields.segments || fields.unknownSegmentIds) {
    if (fields.segments) out.text(first ? '"segments":[' : ',"segments":[');
    const unknown = segmentsInto(fields.segments ? out : undefined, entry, options);
    if (fields.segments) out.text(']');
    if (fields.unknownSegmentIds) {
      out.text(`${first && !fields.segments ? '' : ','}"unknownSegmentIds":${unknown}`);
    }
  }
  out.text('}');
}

/**
 * Copies the record's live, known segments (of the wanted types) into `out`, comma-separated,
 * and returns the ids the catalog does not know, as JSON.
 */
function segmentsInto(
  out: ByteWriter | undefined,
  entry: ProfileEntry,
  options: RenderOptions,
): string {
  if (!entry.bins) return '[]';
  const value = entry.bins[options.segmentsBin];
  const list = new SegmentList(out, options);
  forEachLiveSegment(value, options.nowSecs, (id) => list.add(id));
  return list.unknownJson();
}

/** One record's segment list as it is written: known segments copied, unknown ids kept. */
class SegmentList {
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

  add(id: string | number): void {
    const segment = this.catalog.find(id);
    if (segment === undefined) {
      this.unknown ??= [];
      this.unknown.push(String(id));
      return;
    }
    if (this.out === undefined) return;
    const types = this.segmentTypes;
    if (types !== undefined && (segment.type === undefined || !types.has(segment.type))) return;
    this.out.bytes(this.count++ > 0 ? segment.listed : segment.bytes);
  }

  unknownJson(): string {
    return this.unknown ? JSON.stringify(this.unknown) : '[]';
  }
}
