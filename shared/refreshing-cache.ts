import { withDeadline } from './deadline.js';

/** Timing of a RefreshingCache; all in milliseconds. */
export interface RefreshingCacheOptions {
  /** How old the value may get before a read starts a background check for a newer one. */
  readonly refreshIntervalMs: number;
  /** First wait after a failed load; doubles per consecutive failure up to `retryMaxMs`. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly now?: () => number;
  /** Called once per failed load (first or background), for logging. */
  readonly onError?: (err: unknown, failures: number) => void;
  /** Called when a load swapped in a new value. */
  readonly onSwap?: (value: unknown) => void;
}

/** What health reports about a cache. */
export interface RefreshingCacheStatus<T> {
  readonly value: T | undefined;
  readonly lastSuccessAt: number | undefined;
  readonly lastAttemptAt: number | undefined;
  readonly consecutiveFailures: number;
  readonly lastError: unknown;
  readonly refreshing: boolean;
}

/**
 * A value loaded once and refreshed in the background, driven by reads (Cloud Run may
 * throttle CPU between requests, so no timers). Concurrent first reads share one load; later
 * reads never wait; at most one refresh runs at a time; a failed refresh keeps the last good
 * value and backs off. The loader receives the current value and returns undefined for
 * "unchanged".
 */
export class RefreshingCache<T> {
  private value: T | undefined;
  private inflight: Promise<T> | undefined;
  private nextAttemptAt = 0;
  private failures = 0;
  private lastError: unknown;
  private lastSuccessAt: number | undefined;
  private lastAttemptAt: number | undefined;
  private epoch = 0;
  private readonly now: () => number;

  constructor(
    private readonly loader: (current: T | undefined) => Promise<T | undefined>,
    private readonly options: RefreshingCacheOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The current value at once (starting a refresh when one is due), or undefined before the first load. */
  peek(): T | undefined {
    if (
      this.value !== undefined &&
      this.inflight === undefined &&
      this.now() >= this.nextAttemptAt
    ) {
      this.start().catch(() => undefined); // a background refresh reports through onError
    }
    return this.value;
  }

  /**
   * The current value; before the first load, waits for it (shared by all callers). After a
   * failed first load, callers within the back-off get that failure at once instead of a new load.
   */
  get(): Promise<T> {
    const value = this.peek();
    if (value !== undefined) return Promise.resolve(value);
    if (this.inflight) return this.inflight;
    if (this.failures > 0 && this.now() < this.nextAttemptAt) return Promise.reject(this.lastError);
    return this.start();
  }

  /**
   * The current value at once, or the first load waited for at most `timeoutMs` of running
   * time (see withDeadline); past it, rejects with `onTimeout()`.
   */
  getWithin(timeoutMs: number, onTimeout: () => Error): Promise<T> {
    const value = this.peek();
    if (value !== undefined) return Promise.resolve(value);
    return withDeadline(this.get(), timeoutMs, onTimeout);
  }

  /** Starts the first load without waiting for it (module init). */
  warmUp(): void {
    this.get().catch(() => undefined);
  }

  status(): RefreshingCacheStatus<T> {
    return {
      value: this.value,
      lastSuccessAt: this.lastSuccessAt,
      lastAttemptAt: this.lastAttemptAt,
      consecutiveFailures: this.failures,
      lastError: this.lastError,
      refreshing: this.inflight !== undefined,
    };
  }

  /** Forgets everything, including a load in flight (its result is dropped). For tests. */
  reset(): void {
    this.epoch++;
    this.value = undefined;
    this.inflight = undefined;
    this.nextAttemptAt = 0;
    this.failures = 0;
    this.lastError = undefined;
    this.lastSuccessAt = undefined;
    this.lastAttemptAt = undefined;
  }

  private start(): Promise<T> {
    const epoch = this.epoch;
    this.lastAttemptAt = this.now();
    const run = async (): Promise<T> => {
      try {
        const next = await this.loader(this.value);
        if (epoch !== this.epoch) throw new Error('cache was reset during the load');
        if (next !== undefined) {
          this.value = next; // the swap: one assignment, readers see old or new, never half
          this.options.onSwap?.(next);
        }
        if (this.value === undefined) throw new Error('loader returned no value on the first load');
        this.failures = 0;
        this.lastError = undefined;
        this.lastSuccessAt = this.now();
        this.nextAttemptAt = this.lastSuccessAt + this.options.refreshIntervalMs;
        return this.value;
      } catch (err) {
        if (epoch === this.epoch) {
          this.failures++;
          this.lastError = err;
          const backoff = this.options.retryMinMs * 2 ** Math.min(this.failures - 1, 30);
          this.nextAttemptAt = this.now() + Math.min(backoff, this.options.retryMaxMs);
          this.options.onError?.(err, this.failures);
        }
        throw err;
      } finally {
        if (epoch === this.epoch) this.inflight = undefined;
      }
    };
    // Deferred so that `inflight` is set before run() can reach its finally block.
    const promise = Promise.resolve().then(run);
    this.inflight = promise;
    return promise;
  }
}
