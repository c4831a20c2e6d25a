/**
 * BatchNorm training steps other than the plain one: Ghost BatchNorm (ghost.ts) and Batch
 * Renormalization (renorm.ts), alone or together. The layer hands a step its input and state;
 * the step writes y, returns whether its statistics were finite and the running statistics after
 * it (the layer applies its non-finite policy and commits them), and a backward that overwrites dx,
 * dweight and dbias. Ghost batches are views of x, never copies.
 */
import type { NormView } from '../core/layout.js';
import type { RunningUpdate } from '../core/stats.js';
import { nextRunningStats, updateFactor } from '../core/stats.js';
import { NormkitError } from '../errors.js';
import type { NormKernels } from '../kernels/contract.js';
import type { DType, FloatArray } from '../core/float.js';
import { allocate } from '../tensor.js';
import type { Segment } from './ghost.js';
import { ghostSegments } from './ghost.js';
import type { RenormFactors, RenormOptions } from './renorm.js';
import { renormAffine, renormFactors } from './renorm.js';
import { allFinite } from '../core/float.js';

export interface TrainingStepInput {
  readonly name: string;
  readonly kernels: NormKernels;
  readonly dtype: DType;
  readonly eps: number;
  readonly momentum: number | null;
  readonly y: FloatArray;
  readonly x: FloatArray;
  readonly shape: readonly number[];
  /** The whole batch's view (outer 1). */
  readonly view: NormView;
  readonly weight: FloatArray | null;
  readonly bias: FloatArray | null;
  /** null when the layer keeps no running statistics. */
  readonly running: { readonly mean: FloatArray; readonly var: FloatArray; readonly numBatchesTracked: number } | null;
}

/** Running statistics and counter after a training step. */
export type RunningAfter = RunningUpdate & { readonly numBatchesTracked: number };

export interface TrainingStepResult {
  /** Whether every ghost batch's mean and variance were finite. */
  readonly finite: boolean;
  /** Running statistics and counter after the step; null where the layer keeps none. */
  readonly next: RunningAfter | null;
  /** dx for dy (same shapes as x); dweight and dbias (may be null) are overwritten with the step's sums. */
  readonly backward: (dx: FloatArray, dweight: FloatArray | null, dbias: FloatArray | null, dy: FloatArray) => void;
}

export interface TrainingStepOptions {
  readonly virtualBatchSize: number | null;
  readonly renorm: RenormOptions | null;
}

interface Ran {
  readonly segment: Segment;
  readonly mean: Float64Array;
  readonly rstd: Float64Array;
  /** renorm only: r, d and the BatchNorm weight gamma*r the backward uses */
  readonly renorm: (RenormFactors & { readonly weight: FloatArray }) | null;
}

/** Runs one training forward with ghost batches and/or renorm; validates before it writes anything. */
export function runTrainingStep(input: TrainingStepInput, options: TrainingStepOptions): TrainingStepResult {
  const { kernels, dtype, eps, x, y, weight, bias, running, view } = input;
  const { renorm } = options;
  if (renorm !== null && running === null) {
    throw new NormkitError('option', `${input.name}: renorm needs running statistics (trackRunningStats: true)`);
  }
  const segments = ghostSegments(view, input.shape, options.virtualBatchSize, renorm !== null);
  const G = view.groups;
  const make = (n: number): FloatArray => allocate(dtype, n);
  // running statistics after each ghost batch so far, in float64
  let stats: RunningUpdate | null = running === null ? null : { runningMean: Float64Array.from(running.mean), runningVar: Float64Array.from(running.var) };
  let tracked = running?.numBatchesTracked ?? 0;
  let finite = true;
  const ran: Ran[] = [];
  for (const segment of segments) {
    const { start, end, view: v } = segment;
    const count = v.outer * G;
    const mean = new Float64Array(count);
    const variance = new Float64Array(count);
    const rstd = new Float64Array(count);
    const ys = y.subarray(start, end);
    const xs = x.subarray(start, end);
    kernels.forwardTrain(ys, xs, v, weight, bias, eps, mean, variance, rstd);
    finite &&= allFinite(mean) && allFinite(variance);
    let factors: Ran['renorm'] = null;
    if (renorm !== null && stats !== null) {
      // one ghost batch per segment here: r and d use the running statistics of the steps before
      const rd = renormFactors(renorm, mean, rstd, stats.runningMean, stats.runningVar, eps);
      const affine = renormAffine(rd, weight, bias, make);
      kernels.forwardWithStats(ys, xs, v, affine.weight, affine.bias, mean, rstd);
      factors = { ...rd, weight: affine.weight };
    }
    for (let a = 0; stats !== null && a < v.outer; a++) {
      tracked += 1;
      const one = { ...v, outer: 1 };
      stats = nextRunningStats(stats.runningMean, stats.runningVar, mean.subarray(a * G, (a + 1) * G), variance.subarray(a * G, (a + 1) * G), one, updateFactor(input.momentum, tracked));
    }
    ran.push({ segment, mean, rstd, renorm: factors });
  }
  const next = stats !== null ? { ...stats, numBatchesTracked: tracked } : null;
  const backward: TrainingStepResult['backward'] = (dx, dweight, dbias, dy) => {
    const sumWeight = new Float64Array(G);
    const sumBias = new Float64Array(G);
    const dw = dweight === null ? null : make(G);
    const db = make(G);
    for (const { segment, mean, rstd, renorm: rd } of ran) {
      const { start, end, view: v } = segment;
      kernels.backward(dx.subarray(start, end), dw, db, dy.subarray(start, end), x.subarray(start, end), v, rd?.weight ?? weight, mean, rstd, true);
      for (let g = 0; g < G; g++) {
        // renorm: dgamma = r*sum(dy*xhat_B) + d*sum(dy)
        if (dw !== null) sumWeight[g] += rd === null ? dw[g] : rd.r[g] * dw[g] + rd.d[g] * db[g];
        sumBias[g] += db[g];
      }
    }
    dweight?.set(sumWeight);
    dbias?.set(sumBias);
  };
  return { finite, next, backward };
}
