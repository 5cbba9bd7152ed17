import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

/**
 * Measured figures (`npm run bench`, part f: a mapping refresh, old and new index held at once;
 * see README "Memory"). deploy.sh holds the same numbers; a test keeps the two in step.
 */
export const MEMORY_FIGURES = {
  /** Bytes per id of the compact mapping index (manifest `memoryBytes`; 27.8 measured). */
  indexBytesPerId: 28,
  /**
   * Peak RSS bytes per id while a refresh holds the old index, the new one and the decoder's
   * buffers (81.6 measured at 1M ids, 65.3 at 5M).
   */
  refreshBytesPerId: 85,
  /** What the instance uses with no mapping at all: runtime, clients, catalog, requests. */
  baseBytes: 384 * 1024 * 1024,
} as const;

/**
 * The largest mapping index (manifest `memoryBytes`) an instance with `memoryLimitBytes` can
 * refresh without running out of memory: what is left over the base, scaled from the peak of
 * a refresh down to one index.
 */
export function mappingBudgetFor(memoryLimitBytes: number): number {
  const spare = Math.max(0, memoryLimitBytes - MEMORY_FIGURES.baseBytes);
  return Math.floor((spare * MEMORY_FIGURES.indexBytesPerId) / MEMORY_FIGURES.refreshBytesPerId);
}

/**
 * This instance's memory limit: the cgroup's (what Cloud Run enforces; v2, then v1), else the
 * machine's total memory.
 */
export function instanceMemoryLimit(): number {
  for (const path of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    const text = readText(path).trim();
    const bytes = Number(text);
    // "max" (v2) or a huge number (v1) mean no limit.
    if (text !== '' && Number.isFinite(bytes) && bytes > 0 && bytes < 2 ** 50) return bytes;
  }
  return totalmem();
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
