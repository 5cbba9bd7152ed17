import { type ELDHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** Event-loop delay over a recent window, in milliseconds (Node's `monitorEventLoopDelay`). */
export interface EventLoopDelay {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** How many delays were sampled (one per RESOLUTION_MS of loop time). */
  readonly samples: number;
  /** How long the window ran, in seconds. */
  readonly windowSecs: number;
}

// 10 ms is Node's default resolution: fine enough to see a stall that matters to a socket timeout
// of 50 ms or more, and one cheap timer for the whole process.
const RESOLUTION_MS = 10;
const WINDOW_MS = 60_000;

/**
 * Event-loop delay as the Aerospike client's timers see it: a command's socket and total timers
 * run on this loop, and libuv runs expired timers before it polls for the replies that arrived
 * while JavaScript held the loop. A p99 near the socket timeout means healthy reads are being
 * timed out and retried; size concurrency so it stays well below.
 *
 * Figures cover the current window once it has samples enough, else the last full one; windows
 * roll over every minute on read (no timer of its own). With CPU throttled between requests
 * (Cloud Run's default), an idle gap shows up as one long delay in `maxMs`; `p99Ms` is the figure
 * to size from.
 */
export class EventLoopDelayMonitor {
  readonly #histogram: ELDHistogram;
  #windowStarted: number;
  #last: EventLoopDelay | undefined;

  constructor(private readonly now: () => number = Date.now) {
    this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#histogram.enable();
    this.#windowStarted = now();
  }

  /** The recent figures; never blocks, never allocates a timer. */
  read(): EventLoopDelay {
    const now = this.now();
    const current = this.#figures(now);
    if (now - this.#windowStarted >= WINDOW_MS) {
      this.#last = current;
      this.#histogram.reset();
      this.#windowStarted = now;
      return current;
    }
    // A window just begun says little: prefer the last full one until this one has a few seconds.
    return current.samples >= 100 || !this.#last ? current : this.#last;
  }

  /** Stops sampling (tests; a process that closes its store). */
  disable(): void {
    this.#histogram.disable();
  }

  #figures(now: number): EventLoopDelay {
    const h = this.#histogram;
    const count = h.count;
    // The histogram records nanoseconds; an empty one reports a huge min and NaN mean.
    const ms = (ns: number) => (count === 0 ? 0 : Math.round(ns / 10_000) / 100);
    return {
      p50Ms: ms(h.percentile(50)),
      p99Ms: ms(h.percentile(99)),
      maxMs: ms(h.max),
      samples: count,
      windowSecs: Math.round((now - this.#windowStarted) / 100) / 10,
    };
  }
}

let shared: EventLoopDelayMonitor | undefined;

/** The process-wide monitor, started on first use (one timer, whatever the number of callers). */
export function eventLoopDelay(): EventLoopDelay {
  shared ??= new EventLoopDelayMonitor();
  return shared.read();
}
