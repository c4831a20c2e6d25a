/**
 * The non-finite policy on a training batch (nonFinite option): statistics count as non-finite where the
 * batch's are, or where the running ones would overflow the layer's dtype; 'throw' refuses the batch,
 * 'skip-update' keeps the running statistics, 'propagate' commits them.
 */
import { allFinite, allFiniteF32 } from '../core/float.js';
import type { DType } from '../core/float.js';
import { NormkitError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { formatShape } from '../tensor.js';
import type { NonFinitePolicy } from './options.js';
import type { RunningAfter } from './training-step.js';

/** A training batch's verdict: finite statistics, and the running statistics it would leave (null: none kept). */
export interface BatchVerdict {
  readonly finite: boolean;
  readonly next: RunningAfter | null;
}

/** Whether running statistics computed in float64 stay finite in `dtype`. */
function fitsDtype(dtype: DType, mean: Float64Array, variance: Float64Array): boolean {
  return dtype === 'float32' ? allFiniteF32(mean) && allFiniteF32(variance) : allFinite(mean) && allFinite(variance);
}

/** Whether the layer commits `batch.next`; throws a 'non-finite' NormkitError under 'throw' when the batch is not finite. */
export function commitsBatch(name: string, policy: NonFinitePolicy, dtype: DType, batch: BatchVerdict, input: Tensor): boolean {
  const { next } = batch;
  const finite = batch.finite && (next === null || fitsDtype(dtype, next.runningMean, next.runningVar));
  if (!finite && policy === 'throw') {
    const why = allFinite(input.data) ? 'overflow (finite input too large for the statistics)' : 'are not finite (NaN or Inf in the input)';
    throw new NormkitError('non-finite', `${name}: batch statistics ${why} of size ${formatShape(input.shape)}`);
  }
  return next !== null && (finite || policy !== 'skip-update');
}
