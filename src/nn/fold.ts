/**
 * Folding BatchNorm into the Linear before it, for inference (torch.nn.utils.fusion.fuse_linear_bn_eval):
 * in eval, bn(x) = x*scale + shift per channel with scale = weight/sqrt(running_var + eps) and
 * shift = bias - running_mean*scale, so Linear(W, b) then BatchNorm is Linear(W*scale[o], b*scale + shift).
 * Computed in float64, stored in the Linear's dtype.
 */
import { NormkitError } from '../errors.js';
import { describeValue } from '../tensor.js';
import { BatchNorm1d } from './batchnorm.js';
import { Linear } from './linear.js';
import type { Module } from './module.js';
import { Normalization } from './normalization.js';
import { Sequential } from './sequential.js';

export interface FoldedAffine {
  readonly scale: Float64Array;
  readonly shift: Float64Array;
}

/** Per-channel scale and shift of a layer's eval mode (running statistics); an error where it keeps none. */
export function foldedAffine(layer: Normalization): FoldedAffine {
  const { runningMean, runningVar } = layer;
  if (runningMean === null || runningVar === null) {
    throw new NormkitError('option', `${layer.name}: foldedAffine needs running statistics (trackRunningStats: true)`);
  }
  const w = layer.weight?.data ?? null;
  const b = layer.bias?.data ?? null;
  const scale = new Float64Array(runningMean.length);
  const shift = new Float64Array(runningMean.length);
  for (let c = 0; c < scale.length; c++) {
    scale[c] = (w === null ? 1 : w[c]) / Math.sqrt(runningVar[c] + layer.eps);
    shift[c] = (b === null ? 0 : b[c]) - runningMean[c] * scale[c];
  }
  return { scale, shift };
}

/** A new Linear equal to `linear` followed by `bn` in eval mode (fuse_linear_bn_eval); the inputs are unchanged. */
export function foldBatchNorm(linear: Linear, bn: BatchNorm1d): Linear {
  // a JavaScript caller can pass anything (the arguments swapped, say)
  const [first, second]: unknown[] = [linear, bn];
  if (!(first instanceof Linear) || !(second instanceof BatchNorm1d)) {
    throw new NormkitError('option', `foldBatchNorm(linear, bn): expected a Linear then the BatchNorm1d after it, got ${describeModule(first)} and ${describeModule(second)}`);
  }
  if (bn.numFeatures !== linear.outFeatures) {
    throw new NormkitError('shape', `foldBatchNorm: BatchNorm1d has ${bn.numFeatures} features, the Linear before it ${linear.outFeatures} outputs`);
  }
  const { scale, shift } = foldedAffine(bn);
  const I = linear.inFeatures;
  const folded = new Linear(I, linear.outFeatures, { dtype: linear.dtype });
  const w = linear.weight.data;
  const b = linear.bias?.data ?? null;
  for (let o = 0; o < linear.outFeatures; o++) {
    for (let i = 0; i < I; i++) folded.weight.data[o * I + i] = w[o * I + i] * scale[o];
    // torch: (b - running_mean)*scale + bn.bias, the same value as b*scale + shift
    if (folded.bias !== null) folded.bias.data[o] = (b === null ? 0 : b[o]) * scale[o] + shift[o];
  }
  return folded;
}

/** A module by its name (a layer's `name`), anything else as describeValue says it. */
function describeModule(m: unknown): string {
  if (m instanceof Normalization || m instanceof Linear || m instanceof Sequential) return `a ${m.name}`;
  return describeValue(m);
}

/**
 * A Sequential for inference: every Linear followed by a BatchNorm1d with running statistics becomes one
 * folded Linear (nested Sequentials too); other modules are the same objects. The model itself is unchanged.
 */
export function fuseForInference(model: Sequential): Sequential {
  const given: unknown = model;
  if (!(given instanceof Sequential)) throw new NormkitError('option', `fuseForInference: expected a Sequential, got ${describeModule(given)}`);
  const out: Module[] = [];
  const modules = model.modules;
  for (let k = 0; k < modules.length; k++) {
    const m = modules[k];
    const next = k + 1 < modules.length ? modules[k + 1] : undefined;
    if (m instanceof Linear && next instanceof BatchNorm1d && next.trackRunningStats && next.numFeatures === m.outFeatures) {
      out.push(foldBatchNorm(m, next));
      k++;
    } else out.push(m instanceof Sequential ? fuseForInference(m) : m);
  }
  return new Sequential(...out);
}
