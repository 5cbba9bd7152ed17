import type { Catalog } from '../../shared/catalog/catalog.js';
import { decodeProfileBins } from '../../shared/profiles/profile-bins.js';
import type { ProfileEntry } from './lookup-profiles.js';

/**
 * The response body: an object keyed by user id, requested id first. Built by concatenation
 * because a JS object would reorder integer-like keys (numeric ids) and treat `__proto__` as
 * special; segment metadata is pasted in as pre-rendered JSON from the catalog.
 */
export function renderProfiles(
  entries: readonly ProfileEntry[],
  catalog: Catalog,
  segmentsBin: string,
  nowSecs: number,
): string {
  const parts: string[] = [];
  for (const entry of entries) {
    parts.push(`${JSON.stringify(entry.id)}:${renderOne(entry, catalog, segmentsBin, nowSecs)}`);
  }
  return `{${parts.join(',')}}`;
}

function renderOne(
  entry: ProfileEntry,
  catalog: Catalog,
  segmentsBin: string,
  nowSecs: number,
): string {
  const type = JSON.stringify(entry.type.name);
  if (!entry.bins) {
    return `{"type":${type},"found":false,"attributes":{},"segments":[],"unknownSegmentIds":[]}`;
  }
  const profile = decodeProfileBins(entry.bins, segmentsBin, nowSecs);
  const segments = catalog.resolve(profile.segmentIds);
  return (
    `{"type":${type},"found":true,"attributes":${JSON.stringify(profile.attributes)},` +
    `"segments":[${segments.json.join(',')}],` +
    `"unknownSegmentIds":${JSON.stringify(segments.unknownIds)}}`
  );
}
