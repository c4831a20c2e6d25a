/** Repeated timing: median and min of calls after a warm-up. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The median ms of `reps` calls of fn after one untimed call (synchronous: the copy probes, one-off timings). */
export function medianMs(fn: () => unknown, reps: number): number {
  fn();
  return median(
    Array.from({ length: reps }, () => {
      const start = performance.now();
      fn();
      return performance.now() - start;
    }),
  );
}

/** Times `count` calls of fn (awaiting each that returns a promise) and returns ms per call. */
export async function timeCalls(fn: () => unknown, count: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const result = fn();
    if (result instanceof Promise) await result;
  }
  return (performance.now() - start) / count;
}

/**
 * Calls per sample so that one sample lasts about `targetMs` (timer resolution makes single short
 * calls noisy), and a warm call's time, which is a first sample when one call is enough. The first call
 * is not used: it can be cold (compilation, a collection, workers asleep) by many times, which made a
 * 0.1 ms op look like a 2 ms one and sampled it one call at a time.
 */
export async function callsPerSample(time: (calls: number) => Promise<number>, targetMs = 2): Promise<{ calls: number; once: number }> {
  await time(1);
  const warm = await time(1);
  // a short op takes the faster of two warm calls (one can still be slow); a long one its first warm call
  const once = warm < targetMs ? Math.min(warm, await time(1)) : warm;
  return { calls: once >= targetMs ? 1 : Math.min(10000, Math.ceil(targetMs / Math.max(once, 1e-4))), once };
}
