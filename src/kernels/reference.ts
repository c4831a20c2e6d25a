/** The float64 reference behind the kernel contract, so the oracle runs the same conformance suite. */
import { referenceNorm } from '../reference/normalize.js';
import type { NormKernels } from './contract.js';

export const referenceKernels: NormKernels = {
  name: 'reference',
  dtypes: ['float32', 'float64'],
  forwardTrain(y, x, view, weight, bias, eps, mean, variance, rstd) {
    const result = referenceNorm({ x, view, gamma: weight, beta: bias, eps });
    y.set(result.y);
    mean.set(result.mu);
    variance.set(result.var);
    for (let q = 0; q < rstd.length; q++) rstd[q] = 1 / Math.sqrt(result.var[q] + eps);
  },
  forwardWithStats(y, x, view, weight, bias, mean, rstd) {
    // the reference takes var; eps = 0 with var = rstd^-2 reproduces the given rstd
    const variance = rstd.map((r) => 1 / (r * r));
    y.set(referenceNorm({ x, view, gamma: weight, beta: bias, eps: 0, stats: { mu: mean, var: variance } }).y);
  },
  backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, batchStats) {
    const variance = rstd.map((r) => 1 / (r * r));
    // with batchStats the cached mean is the batch's own, rounded: the reference takes it exact from x
    const result = referenceNorm({ x, dy, view, gamma: weight, eps: 0, stats: { mu: batchStats ? null : mean, var: variance }, batchStats });
    dx.set(result.dx);
    dweight?.set(result.dgamma);
    dbias?.set(result.dbeta);
  },
};
