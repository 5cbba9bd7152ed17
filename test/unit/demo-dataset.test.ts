import { describe, expect, it } from 'vitest';
import { generateDemoDataset } from '../../shared/demo/demo-dataset.js';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';

const small = { seed: 7, persons: 400, segments: 60, orphanProfiles: 20, superNodeIds: 70 };
const DAY_MS = 86_400_000;
const now = Date.now();

describe('generateDemoDataset', () => {
  it('is deterministic for a seed and a day', () => {
    expect(generateDemoDataset(small, now)).toEqual(generateDemoDataset(small, now));
    expect(generateDemoDataset({ ...small, seed: 8 }, now).samples).not.toEqual(
      generateDemoDataset(small, now).samples,
    );
  });

  // Far from the day the test runs, both ways: nothing in the data may be a fixed calendar date.
  it.each([
    ['today', now],
    ['100 years on', now + 36_525 * DAY_MS],
    ['30 years back', now - 10_957 * DAY_MS],
  ])('is dated relative to its day (%s), with the same ids', (_, day) => {
    const data = generateDemoDataset(small, day);
    const today = new Date(day).toISOString().slice(0, 10);
    expect(data.today).toBe(today);
    expect(data.persons).toEqual(generateDemoDataset(small, now).persons);
    const nowSecs = day / 1000;
    const expiries = data.profiles.flatMap(({ bins }) =>
      Array.isArray(bins.segments) ? [] : Object.values(bins.segments as Record<string, number>),
    );
    const expired = expiries.filter((e) => e > 0 && e <= nowSecs);
    const live = expiries.filter((e) => e > nowSecs);
    // Expired a year before the day, live for ten years after it; 0 never expires.
    expect(new Set(expired)).toEqual(new Set([data.expiredAt]));
    expect(data.expiredAt).toBeGreaterThan(nowSecs - 366 * 86_400);
    expect(live.length).toBeGreaterThan(0);
    expect(Math.min(...live)).toBeGreaterThan(nowSecs + 3_000 * 86_400);
    expect(expired.length + live.length + expiries.filter((e) => e === 0).length).toBe(
      expiries.length,
    );
    const firstSeen = data.profiles.map(({ bins }) => bins.first_seen as string);
    const yearBefore = new Date(day - 366 * DAY_MS).toISOString().slice(0, 10);
    expect(firstSeen.every((d) => d < today && d > yearBefore)).toBe(true);
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
