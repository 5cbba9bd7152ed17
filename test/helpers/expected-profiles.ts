import type { DemoDataset } from '../../shared/demo/demo-dataset.js';
import type { IdTypeRegistry } from '../../shared/id-types.js';

/** The answer for one id, computed straight from the source data (the test's oracle). */
export function expectedProfile(
  data: DemoDataset,
  registry: IdTypeRegistry,
  id: string,
  typeCode: string,
  nowSecs: number,
): Record<string, unknown> {
  const type = registry.byCode(typeCode)?.name;
  const record = data.profiles.find((p) => p.set === typeCode && p.key === id);
  if (!record) return { type, found: false, attributes: {}, segments: [], unknownSegmentIds: [] };
  const { segments, ...attributes } = record.bins as { segments: unknown } & Record<
    string,
    unknown
  >;
  const ids = Array.isArray(segments)
    ? segments.map(String)
    : Object.entries(segments as Record<string, number>)
        .filter(([, expiry]) => expiry === 0 || expiry > nowSecs)
        .map(([segmentId]) => segmentId);
  const catalog = new Map(data.segments.map((s) => [s.id, s]));
  return {
    type,
    found: true,
    attributes,
    segments: ids.filter((s) => catalog.has(s)).map((s) => catalog.get(s)),
    unknownSegmentIds: ids.filter((s) => !catalog.has(s)),
  };
}
