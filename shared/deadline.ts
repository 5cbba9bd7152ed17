/**
 * Settles as `work` does, or rejects with `timeoutError()` after `ms`, whichever comes first.
 * The work itself is not cancelled (pass it a signal for that); the timer never outlives the race.
 */
export async function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  timeoutError: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms);
  });
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
