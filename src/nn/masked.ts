/**
 * Masked BatchNorm statistics (Keras's and Flax's `mask`): for inputs padded to a common length, the
 * statistics of each channel cover the valid positions only. A mask has the input's shape without the
 * channel axis ((N, L) for BatchNorm1d's (N, C, L), (N) for (N, C)), true or 1 where a position is valid.
 *
 * Method (float64, per channel g over the M valid positions):
 *   mean = sum(x)/M, var = sum((x - mean)^2)/M (two passes), rstd = 1/sqrt(var + eps)
 *   valid:  y = weight*(x - mean)*rstd + bias;   padded: y = 0
 *   running_var takes the unbiased var*M/(M-1), as unmasked BatchNorm does with its count.
 *   backward (batch statistics), with xhat = (x - mean)*rstd over the valid positions:
 *     dbias = sum(dy), dweight = sum(dy*xhat), dx = weight*rstd*(dy - dbias/M - xhat*dweight/M); padded dx = 0
 * Padded positions are zeroed: y there does not depend on x, so their dx is exactly 0 and they add nothing
 * to dweight or dbias (Keras and Flax normalize them too, with the masked statistics; the valid positions agree).
 * The batch view has one block (outer 1), so position s*inner + i of element (s*G + g)*inner + i is the mask index.
 */
import type { Layout, NormView } from '../core/layout.js';
import type { RunningUpdate } from '../core/stats.js';
import { updateFactor } from '../core/stats.js';
import { NormkitError } from '../errors.js';
import type { DType, FloatArray } from '../tensor.js';
import { describeValue, formatShape } from '../tensor.js';
import type { RunningAfter, TrainingStepResult } from './training-step.js';

/** A mask: `{ data, shape }` with the input's shape less its channel axis, or the flat values; booleans or 0/1, true = valid. */
export type Mask = { readonly data: ArrayLike<boolean | number>; readonly shape: readonly number[] } | ArrayLike<boolean | number>;

/** A checked mask: 1 where valid, per position (N times the spatial size), and how many are valid. */
export interface ValidPositions {
  readonly valid: Uint8Array;
  readonly count: number;
}

function isArrayLike(value: unknown): value is ArrayLike<unknown> {
  return typeof value === 'object' && value !== null && 'length' in value && typeof value.length === 'number';
}

/** The mask's expected shape for an input: its shape without the channel axis. */
export function maskShape(inputShape: readonly number[], layout: Layout): number[] {
  return layout === 'channels-first' ? [inputShape[0], ...inputShape.slice(2)] : inputShape.slice(0, -1);
}

/** Checks a mask given as unknown against the input's shape; every bad mask is a NormkitError('mask'). */
export function readMask(name: string, mask: unknown, inputShape: readonly number[], layout: Layout): ValidPositions {
  const expected = maskShape(inputShape, layout);
  const size = expected.reduce((p, d) => p * d, 1);
  const fail = (why: string): never => {
    throw new NormkitError('mask', `${name}: mask ${why} (input of size ${formatShape(inputShape)} takes a mask of shape ${formatShape(expected)}, true or 1 where valid)`);
  };
  let data: unknown = mask;
  if (typeof mask === 'object' && mask !== null && !isArrayLike(mask) && 'shape' in mask && 'data' in mask) {
    const shape: unknown = mask.shape;
    if (!Array.isArray(shape) || shape.length !== expected.length || shape.some((d, i) => d !== expected[i])) {
      fail(`has shape ${Array.isArray(shape) ? formatShape(shape.map(Number)) : describeValue(shape)}`);
    }
    data = mask.data;
  }
  if (!isArrayLike(data)) return fail(`must be { data, shape } or an array of booleans or 0/1, got ${describeValue(data)}`);
  if (data.length !== size) fail(`has ${data.length} values`);
  const valid = new Uint8Array(size);
  let count = 0;
  for (let i = 0; i < size; i++) {
    const v = data[i];
    if (v === true || v === 1) {
      valid[i] = 1;
      count += 1;
    } else if (v !== false && v !== 0) {
      fail(`values must be booleans or 0/1, got ${describeValue(v)} at index ${i}`);
    }
  }
  return { valid, count };
}

export interface MaskedStepInput {
  readonly name: string;
  readonly dtype: DType;
  readonly eps: number;
  readonly momentum: number | null;
  readonly shape: readonly number[];
  readonly y: FloatArray;
  readonly x: FloatArray;
  /** The batch view (outer 1). */
  readonly view: NormView;
  readonly weight: FloatArray | null;
  readonly bias: FloatArray | null;
  /** Normalize with the batch's masked statistics (training, or no running statistics); else with the running ones. */
  readonly batchStats: boolean;
  /** Update the running statistics (training with them). */
  readonly update: boolean;
  readonly running: { readonly mean: FloatArray; readonly var: FloatArray; readonly numBatchesTracked: number } | null;
  /** Where the mean and rstd per channel go (the layer's cache arrays). */
  readonly mean: Float64Array;
  readonly rstd: Float64Array;
}

/** One masked forward: y written, and what the layer commits (batch verdict) and keeps (backward). Throws before writing anything. */
export function runMaskedStep(input: MaskedStepInput, positions: ValidPositions): { batch: { finite: boolean; next: RunningAfter | null } | null; backward: TrainingStepResult['backward'] } {
  const { view, x, y, weight, bias, eps, mean, rstd, running } = input;
  const { groups: G, inner: B, span: S } = view;
  const { valid, count: M } = positions;
  if (input.batchStats && M === 0) throw new NormkitError('mask', `${input.name}: mask has no valid position; statistics need at least one (input of size ${formatShape(input.shape)})`);
  if (input.update && M <= 1) {
    throw new NormkitError('single-value', `Expected more than 1 value per channel when training, got input size ${formatShape(input.shape)} with ${M} valid position(s) under its mask`);
  }
  const variance = new Float64Array(G);
  if (input.batchStats) {
    mean.fill(0);
    for (let s = 0; s < S; s++) {
      for (let g = 0; g < G; g++) {
        for (let i = 0, e = (s * G + g) * B, p = s * B; i < B; i++, e++, p++) if (valid[p] === 1) mean[g] += x[e];
      }
    }
    for (let g = 0; g < G; g++) mean[g] /= M;
    // second pass: the variance about the mean (no cancellation)
    for (let s = 0; s < S; s++) {
      for (let g = 0; g < G; g++) {
        const m = mean[g];
        for (let i = 0, e = (s * G + g) * B, p = s * B; i < B; i++, e++, p++) {
          if (valid[p] === 1) variance[g] += (x[e] - m) * (x[e] - m);
        }
      }
    }
    for (let g = 0; g < G; g++) {
      variance[g] /= M;
      rstd[g] = 1 / Math.sqrt(variance[g] + eps);
    }
  } else if (running !== null) {
    for (let g = 0; g < G; g++) {
      mean[g] = running.mean[g];
      rstd[g] = 1 / Math.sqrt(running.var[g] + eps);
    }
  }
  for (let s = 0; s < S; s++) {
    for (let g = 0; g < G; g++) {
      const w = weight === null ? 1 : weight[g];
      const b = bias === null ? 0 : bias[g];
      for (let i = 0, e = (s * G + g) * B, p = s * B; i < B; i++, e++, p++) y[e] = valid[p] === 1 ? (x[e] - mean[g]) * rstd[g] * w + b : 0;
    }
  }
  let batch: { finite: boolean; next: RunningAfter | null } | null = null;
  if (input.batchStats) {
    let finite = true;
    for (let g = 0; g < G; g++) finite &&= Number.isFinite(mean[g]) && Number.isFinite(variance[g]);
    let next: RunningAfter | null = null;
    if (input.update && running !== null) {
      const tracked = running.numBatchesTracked + 1;
      const f = updateFactor(input.momentum, tracked);
      const stats: RunningUpdate = { runningMean: new Float64Array(G), runningVar: new Float64Array(G) };
      for (let g = 0; g < G; g++) {
        stats.runningMean[g] = (1 - f) * running.mean[g] + f * mean[g];
        stats.runningVar[g] = (1 - f) * running.var[g] + f * variance[g] * (M / (M - 1));
      }
      next = { ...stats, numBatchesTracked: tracked };
    }
    batch = { finite, next };
  }
  // backward's own copies: the layer reuses its cache arrays
  const savedMean = Float64Array.from(mean.subarray(0, G));
  const savedRstd = Float64Array.from(rstd.subarray(0, G));
  const batchStats = input.batchStats;
  const backward: TrainingStepResult['backward'] = (dx, dweight, dbias, dy) => {
    const sumDy = new Float64Array(G);
    const sumDyXhat = new Float64Array(G);
    for (let s = 0; s < S; s++) {
      for (let g = 0; g < G; g++) {
        for (let i = 0, e = (s * G + g) * B, p = s * B; i < B; i++, e++, p++) {
          if (valid[p] !== 1) continue;
          sumDy[g] += dy[e];
          sumDyXhat[g] += dy[e] * (x[e] - savedMean[g]) * savedRstd[g];
        }
      }
    }
    for (let s = 0; s < S; s++) {
      for (let g = 0; g < G; g++) {
        const scale = (weight === null ? 1 : weight[g]) * savedRstd[g];
        for (let i = 0, e = (s * G + g) * B, p = s * B; i < B; i++, e++, p++) {
          if (valid[p] !== 1) {
            dx[e] = 0;
          } else if (batchStats) {
            const xhat = (x[e] - savedMean[g]) * savedRstd[g];
            // term 1 dy*rstd, term 2 the xhat term, term 3 the mean term (over the M valid positions)
            dx[e] = scale * (dy[e] - xhat * (sumDyXhat[g] / M) - sumDy[g] / M);
          } else {
            dx[e] = scale * dy[e];
          }
        }
      }
    }
    dweight?.set(sumDyXhat);
    dbias?.set(sumDy);
  };
  return { batch, backward };
}
