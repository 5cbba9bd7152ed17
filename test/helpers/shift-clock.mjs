// Preloaded into a child process (node --import) to run it on another day: Date.now(),
// `new Date()` and `Date()` are moved by SHIFT_CLOCK_MS milliseconds; explicit dates, timers and
// performance.now() are untouched. Tests use it to check that data dated relative to "today"
// and code that reads the clock agree on any day (no fixed calendar date).
const offset = Number(process.env.SHIFT_CLOCK_MS ?? '0');
if (!Number.isSafeInteger(offset)) throw new Error(`SHIFT_CLOCK_MS: not an integer: ${offset}`);
if (offset !== 0) {
  const RealDate = Date;
  const now = () => RealDate.now() + offset;
  // A function rather than a subclass: `Date()` without `new` must still work (it gives a string).
  function ShiftedDate(...args) {
    if (!new.target) return new RealDate(now()).toString();
    return args.length === 0 ? new RealDate(now()) : new RealDate(...args);
  }
  ShiftedDate.prototype = RealDate.prototype;
  ShiftedDate.now = now;
  ShiftedDate.parse = RealDate.parse;
  ShiftedDate.UTC = RealDate.UTC;
  globalThis.Date = ShiftedDate;
}
