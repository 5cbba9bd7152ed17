import type { Catalog } from '../../shared/catalog/catalog.js';
import { attributesOf, forEachLiveSegment } from '../../shared/profiles/profile-bins.js';
import type { ProfileEntry } from './lookup-profiles.js';

const OPEN = Buffer.from('{');
const CLOSE = Buffer.from('}');
const COMMA = Buffer.from(',');
const NOT_FOUND = Buffer.from('false,"attributes":{},"segments":[],"unknownSegmentIds":[]}');

/**
 * The response body: an object keyed by user id, requested id first. Built as bytes, not as a
 * JS object (which would reorder integer-like keys, i.e. numeric ids, and treat `__proto__` as
 * special), with each segment's metadata pasted in as JSON the catalog encoded at load. One
 * pass over each record's segments: no intermediate id lists.
 */
export function renderProfiles(
  entries: readonly ProfileEntry[],
  catalog: Catalog,
  segmentsBin: string,
  nowSecs: number,
): Buffer {
  const parts: Buffer[] = [OPEN];
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as ProfileEntry;
    if (i > 0) parts.push(COMMA);
    const head = `${JSON.stringify(entry.id)}:{"type":${JSON.stringify(entry.type.name)},"found":`;
    const bins = entry.bins;
    if (!bins) {
      parts.push(Buffer.from(head), NOT_FOUND);
      continue;
    }
    const attributes = JSON.stringify(attributesOf(bins, segmentsBin));
    parts.push(Buffer.from(`${head}true,"attributes":${attributes},"segments":[`));
    const unknown: string[] = [];
    let first = true;
    forEachLiveSegment(bins[segmentsBin], nowSecs, (id) => {
      const segment = catalog.find(id);
      if (segment === undefined) unknown.push(String(id));
      else {
        parts.push(first ? segment.alone : segment.afterComma);
        first = false;
      }
    });
    parts.push(Buffer.from(`],"unknownSegmentIds":${JSON.stringify(unknown)}}`));
  }
  parts.push(CLOSE);
  return Buffer.concat(parts);
}
