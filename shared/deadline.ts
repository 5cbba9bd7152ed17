/**
 * Settles as `work` does, or rejects with `timeoutError()` after `ms` of the process's running
 * time, whichever comes first. The work itself is not cancelled (pass it a signal for that);
 * the timer never outlives the race.
 *
 * Running time: Cloud Run throttles CPU between requests, and a background refresh frozen for
 * a while must not time out on wake-up before its answer, already in the socket, is read. A
 * gap between two ticks counts as one tick, and the deadline lets pending I/O run once first.
 */
export async function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  timeoutError: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    const tickMs = Math.max(5, Math.min(500, Math.floor(ms / 4)));
    let elapsed = 0;
    let last = performance.now();
    timer = setInterval(() => {
      const now = performance.now();
      elapsed += Math.min(now - last, tickMs * 2);
      last = now;
      if (elapsed >= ms) {
        clearInterval(timer);
        setImmediate(() => reject(timeoutError()));
      }
    }, tickMs);
  });
  timedOut.catch(() => undefined); // the race below reports it, or the work won
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
