import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { timingMs } from '../../functions/profile/server-timing.js';

describe('durations in server-timing', () => {
  it('print with two decimals, as toFixed(2) does away from half-hundredths', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e7, noNaN: true }), (ms) => {
        const printed = timingMs(ms);
        expect(printed).toMatch(/^[0-9]+\.[0-9]{2}$/);
        expect(Math.abs(Number(printed) - ms)).toBeLessThanOrEqual(0.005 + 1e-9 * ms);
        const hundredths = ms * 100;
        if (Math.abs(hundredths - Math.floor(hundredths) - 0.5) > 1e-6) {
          expect(printed).toBe(ms.toFixed(2));
        }
      }),
      { numRuns: 5_000 },
    );
    for (const [ms, printed] of [
      [0, '0.00'],
      [0.004, '0.00'],
      [0.05, '0.05'],
      [1, '1.00'],
      [12.3, '12.30'],
      [99.999, '100.00'],
    ] as const) {
      expect(timingMs(ms)).toBe(printed);
    }
  });

  it('fall back to toFixed beyond what the integer path holds', () => {
    expect(timingMs(3e7)).toBe('30000000.00');
    // The integer path would print -2.50 here: only the fallback gets it right.
    expect(timingMs(-1.5)).toBe('-1.50');
    expect(timingMs(Number.NaN)).toBe('NaN');
  });
});
