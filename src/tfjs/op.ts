/**
 * Batch normalization in training mode as one tfjs op: y with the batch statistics, plus those statistics
 * (mean and biased variance, as tf.moments gives them), differentiable in x, scale and offset. On the
 * backends normkit serves it is one fused kernel; elsewhere it is tfjs's own tf.moments + tf.batchNorm.
 */
import { NormkitError } from '../errors.js';
import { readOptions } from '../nn/options.js';
import { describeValue, formatShape } from '../tensor.js';
import type { FallbackNotices } from './fallback.js';
import { BATCH_NORM_TRAIN } from './training.js';
import type { Tensor, Tf } from './types.js';

export interface BatchNormTrainingOptions {
  /** The channel axis (statistics per index of it, over every other axis); negative counts from the end. Default -1. */
  readonly axis?: number;
  /** gamma, shape [C]; absent: 1. */
  readonly scale?: Tensor | null;
  /** beta, shape [C]; absent: 0. */
  readonly offset?: Tensor | null;
  /** Default 1e-3 (tfjs's). */
  readonly epsilon?: number;
}

export interface BatchNormTrainingResult {
  readonly y: Tensor;
  readonly mean: Tensor;
  readonly variance: Tensor;
}

/** Whether the fused kernel serves the current backend: answered by the installer. */
export type FusedAvailable = () => boolean;

export function batchNormTraining(tf: Tf, fused: FusedAvailable, notices: FallbackNotices, x: Tensor, raw?: BatchNormTrainingOptions): BatchNormTrainingResult {
  // every key and value read once and checked (a JavaScript caller can pass anything)
  const options: BatchNormTrainingOptions = readOptions('batchNormTraining', raw, ['axis', 'scale', 'offset', 'epsilon']);
  const rank = x.shape.length;
  const given: unknown = options.axis ?? -1;
  if (typeof given !== 'number' || !Number.isInteger(given)) throw new NormkitError('option', `batchNormTraining: axis must be an integer, got ${describeValue(given)}`);
  const axis = given < 0 ? given + rank : given;
  if (axis < 0 || axis >= rank) {
    throw new NormkitError('option', `batchNormTraining: axis ${given} is outside x's rank ${rank}`);
  }
  const epsilonGiven: unknown = options.epsilon ?? 1e-3;
  if (typeof epsilonGiven !== 'number' || !Number.isFinite(epsilonGiven) || epsilonGiven <= 0) {
    throw new NormkitError('option', `batchNormTraining: epsilon must be a finite number > 0, got ${describeValue(epsilonGiven)}`);
  }
  const c = x.shape[axis];
  for (const [name, t] of [['scale', options.scale], ['offset', options.offset]] as const) {
    if (t != null && (t.shape.length !== 1 || t.shape[0] !== c)) {
      throw new NormkitError('shape', `batchNormTraining: ${name} must have shape [${c}] (x's axis ${axis}), got ${formatShape(t.shape)}`);
    }
  }
  const epsilon = epsilonGiven;
  return tf.tidy(() => {
    const scale = options.scale ?? tf.ones([c]);
    const offset = options.offset ?? tf.zeros([c]);
    if (x.dtype === 'float32' && fused()) {
      const [y, mean, variance] = tf.engine().runKernel<Tensor[]>(BATCH_NORM_TRAIN, { x, scale, offset }, { axis, varianceEpsilon: epsilon });
      return { y, mean, variance };
    }
    notices.say(`batch normalization in training on backend '${tf.getBackend()}' with x ${x.dtype} ${formatShape(x.shape)}: normkit serves float32 on cpu, wasm and webgpu while installed; running tf.moments + tf.batchNorm`);
    const axes = Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis);
    const { mean, variance } = tf.moments(x, axes);
    const shape = Array.from({ length: rank }, (_, i) => (i === axis ? c : 1));
    const y = tf.batchNorm(x, tf.reshape(mean, shape), tf.reshape(variance, shape), tf.reshape(offset, shape), tf.reshape(scale, shape), epsilon);
    return { y, mean, variance };
  });
}
