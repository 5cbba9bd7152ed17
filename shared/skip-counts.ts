// Source records a job skipped, counted by reason (snapshot jobs and the Bigtable sync alike).

/** Adds `n` skipped source records of `reason` to `byReason`. */
export function countInto(byReason: Map<string, number>, reason: string, n = 1): void {
  byReason.set(reason, (byReason.get(reason) ?? 0) + n);
}

/** All skipped source records together (a summary's `skipped`). */
export function totalSkipped(byReason: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const n of byReason.values()) total += n;
  return total;
}
