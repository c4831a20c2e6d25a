/** How the wasm backend runs a batch of kernel calls: here, or spread over worker threads. */
import type { Job, Kernels } from './compiled.js';

export type { Job } from './compiled.js';

export interface WorkerPool {
  /** Threads including the calling one. */
  readonly threads: number;
  /** Runs the jobs (at most one a thread) on the calling thread and the workers, each taking its own job first, then any left; returns when all are done. */
  run(jobs: readonly Job[], local: Kernels): void;
  close(): Promise<void>;
}

/** Splits [0, total) into at most `parts` contiguous ranges of near-equal size. */
export function splitRange(total: number, parts: number): [number, number][] {
  const count = Math.max(1, Math.min(parts, total));
  const ranges: [number, number][] = [];
  for (let k = 0; k < count; k++) ranges.push([Math.floor((total * k) / count), Math.floor((total * (k + 1)) / count)]);
  return ranges;
}
