/** An abort signal for a whole job run: its own time limit, or the platform's, whichever is first. */
export function jobDeadline(timeoutMs: number, platform?: AbortSignal): AbortSignal {
  const own = AbortSignal.timeout(timeoutMs);
  return platform ? AbortSignal.any([own, platform]) : own;
}
