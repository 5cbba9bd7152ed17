/**
 * Calls `onTick` with the running time since the previous tick, every quarter of `timeoutMs`
 * (5 to 500 ms), until the returned interval is cleared.
 *
 * Running time, not wall time: Cloud Run throttles an instance's CPU between requests, and a
 * background refresh frozen for a while must not time out on wake-up before its answer, already
 * in the socket, is read (timers run before I/O in Node's event loop). So a gap between two
 * ticks counts as two ticks at most; callers that time out let pending I/O run once first
 * (setImmediate comes after the poll phase).
 */
export function runningTicks(
  timeoutMs: number,
  onTick: (elapsedMs: number) => void,
): NodeJS.Timeout {
  const tickMs = Math.max(5, Math.min(500, Math.floor(timeoutMs / 4)));
  let last = performance.now();
  return setInterval(() => {
    const now = performance.now();
    const elapsed = Math.min(now - last, tickMs * 2);
    last = now;
    onTick(elapsed);
  }, tickMs);
}

/**
 * Settles as `work` does, or rejects with `timeoutError()` after `ms` of the process's running
 * time (see runningTicks), whichever comes first. The work itself is not cancelled (pass it a
 * signal for that); the timer never outlives the race.
 */
export async function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  timeoutError: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    let elapsed = 0;
    timer = runningTicks(ms, (tick) => {
      elapsed += tick;
      if (elapsed < ms) return;
      clearInterval(timer);
      setImmediate(() => reject(timeoutError()));
    });
  });
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearInterval(timer);
  }
}

/**
 * Settles as `work` does, or rejects with the signal's reason once it aborts: for calls that
 * take no signal themselves. The work is abandoned, not cancelled.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
