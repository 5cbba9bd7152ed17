import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MEMORY_FIGURES, mappingBudgetFor } from '../../shared/memory-budget.js';

// One set of measured figures sizes the profile function (deploy.sh), bounds what an instance
// loads (shared/memory-budget.ts) and is documented (README): they must not drift apart.
const ROOT = new URL('../..', import.meta.url).pathname;
const deploy = readFileSync(`${ROOT}deploy.sh`, 'utf8');
const readme = readFileSync(`${ROOT}README.md`, 'utf8');
const constant = (name: string) => Number(new RegExp(`^${name}=(\\d+)$`, 'm').exec(deploy)?.[1]);

describe('memory figures', () => {
  it('are the same in deploy.sh, the code and the README', () => {
    expect(constant('REFRESH_BYTES_PER_ID')).toBe(MEMORY_FIGURES.refreshBytesPerId);
    expect(constant('INDEX_BYTES_PER_ID')).toBe(MEMORY_FIGURES.indexBytesPerId);
    expect(constant('PROFILE_BASE_MIB') * 1024 * 1024).toBe(MEMORY_FIGURES.baseBytes);
    expect(readme).toContain(`${MEMORY_FIGURES.refreshBytesPerId} bytes per id during a refresh`);
    expect(readme).toContain(`${MEMORY_FIGURES.indexBytesPerId} bytes per id loaded`);
  });

  it('give an instance a mapping budget that its refresh peak fits in', () => {
    const memory = 2 * 1024 ** 3;
    const budget = mappingBudgetFor(memory);
    const ids = budget / MEMORY_FIGURES.indexBytesPerId;
    const peak = MEMORY_FIGURES.baseBytes + ids * MEMORY_FIGURES.refreshBytesPerId;
    expect(peak).toBeLessThanOrEqual(memory);
    expect(peak).toBeGreaterThan(memory * 0.99);
  });
});
