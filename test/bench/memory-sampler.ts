/** Samples this process's memory while something runs, to report the peak. */
export function sampleMemory(everyMs = 20): () => { peakRssBytes: number; peakHeapBytes: number } {
  let peakRssBytes = 0;
  let peakHeapBytes = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakRssBytes = Math.max(peakRssBytes, m.rss);
    peakHeapBytes = Math.max(peakHeapBytes, m.heapUsed);
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return () => {
    clearInterval(timer);
    sample();
    return { peakRssBytes, peakHeapBytes };
  };
}
