/**
 * Running-statistics policy (PyTorch): running = (1 - f)*running + f*batch with f = momentum,
 * or f = 1/numBatchesTracked for the cumulative average (momentum null); the running variance
 * takes the unbiased batch variance var*M/(M-1). Per-block statistics are averaged over the blocks
 * (InstanceNorm), which for BatchNorm's single block is the identity.
 */
import type { NormView } from './layout.js';
import { reduceSize } from './layout.js';
import type { FloatArray } from './float.js';

export interface RunningUpdate {
  readonly runningMean: Float64Array;
  readonly runningVar: Float64Array;
}

/** The running statistics after one training batch, into `into` (G values each) or new arrays; computed apart so a caller can commit or drop them. */
export function nextRunningStats(
  runningMean: FloatArray,
  runningVar: FloatArray,
  batchMean: Float64Array,
  batchVar: Float64Array,
  view: NormView,
  factor: number,
  into?: RunningUpdate,
): RunningUpdate {
  const { outer: A, groups: G } = view;
  const m = reduceSize(view);
  const unbias = m / (m - 1);
  const nextMean = into?.runningMean ?? new Float64Array(G);
  const nextVar = into?.runningVar ?? new Float64Array(G);
  for (let g = 0; g < G; g++) {
    let sumMean = 0;
    let sumVar = 0;
    for (let a = 0; a < A; a++) {
      sumMean += batchMean[a * G + g];
      sumVar += batchVar[a * G + g];
    }
    nextMean[g] = (1 - factor) * runningMean[g] + factor * (sumMean / A);
    nextVar[g] = (1 - factor) * runningVar[g] + factor * ((sumVar / A) * unbias);
  }
  return into ?? { runningMean: nextMean, runningVar: nextVar };
}

/** The update factor: momentum, or 1/numBatchesTracked for the cumulative moving average. */
export function updateFactor(momentum: number | null, numBatchesTracked: number): number {
  return momentum ?? 1 / numBatchesTracked;
}

/**
 * Eval with running statistics: mean and rstd = 1/sqrt(running_var + eps) for every block (A*G values each),
 * rstd computed once per channel and copied to the blocks after the first.
 */
export function statsFromRunning(mean: Float64Array, rstd: Float64Array, runningMean: FloatArray, runningVar: FloatArray, eps: number, groups: number): void {
  for (let g = 0; g < groups; g++) {
    mean[g] = runningMean[g];
    rstd[g] = 1 / Math.sqrt(runningVar[g] + eps);
  }
  // blocks after the first (no integer division per value: a small call would spend more on it than on y)
  for (let q = groups; q < mean.length; q += groups) {
    mean.copyWithin(q, 0, groups);
    rstd.copyWithin(q, 0, groups);
  }
}
