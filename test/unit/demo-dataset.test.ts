import { describe, expect, it } from 'vitest';
import { generateDemoDataset } from '../../shared/demo/demo-dataset.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';

const small = { seed: 7, persons: 400, segments: 60, orphanProfiles: 20, superNodeIds: 70 };

describe('generateDemoDataset', () => {
  it('is deterministic for a seed', () => {
    expect(generateDemoDataset(small)).toEqual(generateDemoDataset(small));
    expect(generateDemoDataset({ ...small, seed: 8 }).samples).not.toEqual(
      generateDemoDataset(small).samples,
    );
  });

  it('has the shapes the demo promises', () => {
    const data = generateDemoDataset(small);
    const registry = defaultIdTypeRegistry();
    const regular = data.persons.slice(0, small.persons);
    expect(regular.every((p) => p.length >= 1 && p.length <= 4)).toBe(true);
    expect(data.persons.at(-1)).toHaveLength(small.superNodeIds + 1);
    for (const person of data.persons) {
      for (const { id, typeCode } of person) {
        const type = registry.byCode(typeCode);
        expect(type && registry.asType(id, type)?.id).toBe(id);
      }
    }
    const mapped = new Set(data.persons.flat().map((e) => e.id));
    const profiled = new Set(data.profiles.map((p) => p.key));
    expect([...profiled].filter((id) => !mapped.has(id))).toHaveLength(small.orphanProfiles);
    expect([...mapped].filter((id) => !profiled.has(id)).length).toBeGreaterThan(0);
    expect(data.segments).toHaveLength(small.segments);
    for (const { bins } of data.profiles) {
      const segments = bins.segments as unknown[] | Record<string, number>;
      const n = Array.isArray(segments) ? segments.length : Object.keys(segments).length;
      expect(n).toBeGreaterThanOrEqual(5);
      expect(n).toBeLessThanOrEqual(100);
    }
    expect(profiled.has(data.samples.linked)).toBe(true);
    expect(profiled.has(data.samples.orphan) && !mapped.has(data.samples.orphan)).toBe(true);
    expect(mapped.has(data.samples.noProfile) && !profiled.has(data.samples.noProfile)).toBe(true);
  });
});
