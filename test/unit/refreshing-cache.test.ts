import { describe, expect, it } from 'vitest';
import { RefreshingCache } from '../../shared/refreshing-cache.js';

/** A loader whose calls stay pending until the test settles them. */
function controlledLoader<T>() {
  const calls: {
    current: T | undefined;
    resolve: (v: T | undefined) => void;
    reject: (e: unknown) => void;
  }[] = [];
  const loader = (current: T | undefined) =>
    new Promise<T | undefined>((resolve, reject) => calls.push({ current, resolve, reject }));
  return { loader, calls };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function cacheWith<T>(
  loader: (c: T | undefined) => Promise<T | undefined>,
  clock: { now: number },
) {
  const errors: unknown[] = [];
  const cache = new RefreshingCache<T>(loader, {
    refreshIntervalMs: 1_000,
    retryMinMs: 100,
    retryMaxMs: 400,
    now: () => clock.now,
    onError: (err) => errors.push(err),
  });
  return { cache, errors };
}

describe('RefreshingCache', () => {
  it('shares one first load among concurrent readers', async () => {
    const clock = { now: 0 };
    const { loader, calls } = controlledLoader<string>();
    const { cache } = cacheWith(loader, clock);
    const reads = [cache.get(), cache.get(), cache.get()];
    await tick();
    expect(calls).toHaveLength(1);
    calls[0]?.resolve('v1');
    expect(await Promise.all(reads)).toEqual(['v1', 'v1', 'v1']);
  });

  it('drops a failed first load, answers the failure during back-off, then retries', async () => {
    const clock = { now: 0 };
    const { loader, calls } = controlledLoader<string>();
    const { cache, errors } = cacheWith(loader, clock);
    const first = cache.get();
    await tick();
    calls[0]?.reject(new Error('down'));
    await expect(first).rejects.toThrow('down');
    await expect(cache.get()).rejects.toThrow('down'); // within back-off: no new load
    expect(calls).toHaveLength(1);
    clock.now = 100;
    const second = cache.get();
    await tick();
    expect(calls).toHaveLength(2);
    calls[1]?.resolve('v1');
    expect(await second).toBe('v1');
    expect(errors).toHaveLength(1);
  });

  it('never makes a reader wait once loaded, and refreshes once in the background', async () => {
    const clock = { now: 0 };
    const { loader, calls } = controlledLoader<string>();
    const { cache } = cacheWith(loader, clock);
    const first = cache.get();
    await tick();
    calls[0]?.resolve('v1');
    await first;

    clock.now = 999;
    expect(cache.peek()).toBe('v1');
    await tick();
    expect(calls).toHaveLength(1); // not due yet

    clock.now = 1_000;
    expect(cache.peek()).toBe('v1');
    expect(cache.peek()).toBe('v1');
    expect(await cache.get()).toBe('v1');
    await tick();
    expect(calls).toHaveLength(2); // single flight
    expect(calls[1]?.current).toBe('v1'); // the loader sees the current value

    calls[1]?.resolve('v2');
    await tick();
    expect(cache.peek()).toBe('v2');
  });

  it('keeps the value when the loader says unchanged', async () => {
    const clock = { now: 0 };
    let n = 0;
    const { cache } = cacheWith<string>(async () => (n++ === 0 ? 'v1' : undefined), clock);
    expect(await cache.get()).toBe('v1');
    clock.now = 1_000;
    cache.peek();
    await tick();
    expect(n).toBe(2);
    expect(cache.peek()).toBe('v1');
    expect(cache.status().consecutiveFailures).toBe(0);
  });

  it('keeps the last good value when a refresh fails, and backs off exponentially', async () => {
    const clock = { now: 0 };
    let fail = false;
    let loads = 0;
    const { cache, errors } = cacheWith<string>(async () => {
      loads++;
      if (fail) throw new Error('corrupt');
      return `v${loads}`;
    }, clock);
    expect(await cache.get()).toBe('v1');
    fail = true;
    const attemptsAt: number[] = [];
    for (clock.now = 1_000; clock.now < 2_000; clock.now += 50) {
      const before = loads;
      expect(cache.peek()).toBe('v1');
      await tick();
      if (loads > before) attemptsAt.push(clock.now);
    }
    // Due at 1000, then back-off 100, 200, 400 (capped).
    expect(attemptsAt).toEqual([1_000, 1_100, 1_300, 1_700]);
    expect(errors).toHaveLength(4);
    expect(cache.status()).toMatchObject({ value: 'v1', consecutiveFailures: 4 });

    fail = false;
    clock.now = 2_100;
    cache.peek();
    await tick();
    expect(cache.peek()).toBe('v6');
    expect(cache.status().consecutiveFailures).toBe(0);
  });

  it('drops a load in flight on reset', async () => {
    const clock = { now: 0 };
    const { loader, calls } = controlledLoader<string>();
    const { cache } = cacheWith(loader, clock);
    const stale = cache.get();
    await tick();
    cache.reset();
    calls[0]?.resolve('old');
    await expect(stale).rejects.toThrow('reset');
    expect(cache.peek()).toBeUndefined();
  });
});
