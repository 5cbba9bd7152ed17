import { writeAttributeMembers } from '../../functions/profile/render-attributes.js';
import { ByteWriter } from '../../shared/byte-writer.js';
import type { JsonValue } from '../../shared/json-value.js';
import { forEachLiveSegment } from '../../shared/profiles/profile-bins.js';
import type { ProfileBins } from '../../shared/profiles/profile-store.js';

/** What the renderer takes from a record: its attributes and its live segment ids, in order. */
export function decodeBins(bins: ProfileBins, segmentsBin: string, nowSecs: number) {
  const segmentIds: (string | number)[] = [];
  forEachLiveSegment(bins[segmentsBin], nowSecs, { segment: (id) => segmentIds.push(id) });
  // The attributes as the renderer writes them (JSON.parse keeps a `__proto__` member as data).
  const out = new ByteWriter().text('{');
  writeAttributeMembers(out, bins, segmentsBin);
  const written = out.text('}').take();
  const attributes: Record<string, JsonValue> = JSON.parse(written.bytes.toString());
  written.release();
  return { attributes, segmentIds };
}
