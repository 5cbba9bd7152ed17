import type { CatalogView } from '../../shared/catalog/catalog.js';
import { attributesOf, forEachLiveSegment } from '../../shared/profiles/profile-bins.js';
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
}

/** What the original service's flat view puts beside the attributes (ours win a name clash). */
const FLAT_KEYS = ['segments', 'unknownSegmentIds'] as const;

/**
 * The answer's body: an object keyed by user id, requested id first. Built as one string, not
 * as a JS object (which would reorder integer-like keys, i.e. numeric ids, and treat
 * `__proto__` as special): each segment's metadata is pasted in as JSON the catalog encoded once
 * for this field selection, in one pass over each record's segments.
 */
export function renderProfiles(entries: readonly ProfileEntry[], options: RenderOptions): string {
  let out = '{';
  for (let i = 0; i < entries.length; i++) {
    if (i > 0) out += ',';
    out += options.flat
      ? flatEntry(entries[i] as ProfileEntry, options)
      : fullEntry(entries[i] as ProfileEntry, options);
  }
  return `${out}}`;
}

function fullEntry(entry: ProfileEntry, options: RenderOptions): string {
  const { fields } = options;
  let out = `${JSON.stringify(entry.id)}:{"type":${JSON.stringify(entry.type.name)},"found":${entry.bins ? 'true' : 'false'}`;
  const bins = entry.bins;
  if (fields.attributes) {
    out += `,"attributes":${bins ? JSON.stringify(attributesOf(bins, options.segmentsBin)) : '{}'}`;
  }
  if (fields.segments || fields.unknownSegmentIds) {
    const { segments, unknown } = segmentsOf(entry, options);
    if (fields.segments) out += `,"segments":[${segments}]`;
    if (fields.unknownSegmentIds) out += `,"unknownSegmentIds":${unknown}`;
  }
  return `${out}}`;
}

function flatEntry(entry: ProfileEntry, options: RenderOptions): string {
  const { fields } = options;
  const parts: string[] = [];
  const bins = entry.bins;
  if (fields.attributes && bins) {
    const taken = new Set<string>();
    if (fields.segments) taken.add(FLAT_KEYS[0]);
    if (fields.unknownSegmentIds) taken.add(FLAT_KEYS[1]);
    const attributes = attributesOf(bins, options.segmentsBin);
    const kept = Object.fromEntries(
      Object.entries(attributes).filter(([name]) => !taken.has(name)),
    );
    const json = JSON.stringify(kept);
    if (json.length > 2) parts.push(json.slice(1, -1));
  }
  if (fields.segments || fields.unknownSegmentIds) {
    const { segments, unknown } = segmentsOf(entry, options);
    if (fields.segments) parts.push(`"segments":[${segments}]`);
    if (fields.unknownSegmentIds) parts.push(`"unknownSegmentIds":${unknown}`);
  }
  return `${JSON.stringify(entry.id)}:{${parts.join(',')}}`;
}

/** The record's live segments as joined JSON, and the ids the catalog does not know. */
function segmentsOf(
  entry: ProfileEntry,
  options: RenderOptions,
): { segments: string; unknown: string } {
  if (!entry.bins) return { segments: '', unknown: '[]' };
  const { catalog, segmentTypes } = options;
  let segments = '';
  let unknown: string[] | undefined;
  forEachLiveSegment(entry.bins[options.segmentsBin], options.nowSecs, (id) => {
    const segment = catalog.find(id);
    if (segment === undefined) {
      unknown ??= [];
      unknown.push(String(id));
    } else if (
      segmentTypes === undefined ||
      (segment.type !== undefined && segmentTypes.has(segment.type))
    ) {
      segments += segments === '' ? segment.json : `,${segment.json}`;
    }
  });
  return { segments, unknown: unknown ? JSON.stringify(unknown) : '[]' };
}
