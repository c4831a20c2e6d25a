/**
 * tf.layers.batchNormalization's training path on the fused kernel. tfjs 4.22 (tfjs-layers
 * normalization.ts, BatchNormalization.call) normalizes with tf.moments' biased variance and then updates
 * each moving statistic as `moving = moving - (moving - batch)*(1 - momentum)` (momentum 0.99 by
 * default weighting the old value; the biased variance also goes into movingVariance). This runs the
 * same update with the same tfjs ops, on the fused kernel's mean and variance. Inference is untouched
 * here (it reaches FusedBatchNorm, which normkit serves).
 */
import type { FallbackNotices } from './fallback.js';
import type { BatchNormTrainingOptions, BatchNormTrainingResult } from './op.js';
import type { Tensor, Tf } from './types.js';

type Kwargs = { readonly [key: string]: unknown };

interface LayerVariable {
  readonly originalName: string;
  read(): Tensor;
  write(value: Tensor): unknown;
}

interface BatchNormLayer {
  readonly name: string;
  getConfig(): { readonly [key: string]: unknown };
  readonly weights: readonly LayerVariable[];
}

type Call = (this: BatchNormLayer, inputs: Tensor | Tensor[], kwargs: Kwargs) => Tensor | Tensor[];

interface Patchable {
  call: Call;
}

function isPatchable(proto: unknown): proto is Patchable {
  return typeof proto === 'object' && proto !== null && Object.hasOwn(proto, 'call') && 'call' in proto && typeof proto.call === 'function';
}

interface Settings {
  readonly axis: number;
  readonly momentum: number;
  readonly epsilon: number;
  readonly gamma: LayerVariable | null;
  readonly beta: LayerVariable | null;
  readonly movingMean: LayerVariable;
  readonly movingVariance: LayerVariable;
}

/** The layer's settings from its public config and weights ([gamma?, beta?, moving_mean, moving_variance]), or why they do not read. */
function readSettings(layer: BatchNormLayer): Settings | string {
  const { axis, momentum, epsilon, center, scale } = layer.getConfig();
  if (typeof axis !== 'number' || typeof momentum !== 'number' || typeof epsilon !== 'number' || typeof center !== 'boolean' || typeof scale !== 'boolean') {
    return 'its config lacks a numeric axis, momentum, epsilon or boolean center, scale';
  }
  const names = ['gamma', 'beta', 'moving_mean', 'moving_variance'].filter((n) => (n === 'gamma' ? scale : n === 'beta' ? center : true));
  const { weights } = layer;
  const named = (v: LayerVariable | undefined, n: string) => v !== undefined && (v.originalName === n || v.originalName.endsWith(`/${n}`));
  if (weights.length !== names.length || !names.every((n, i) => named(weights[i], n))) {
    return `its weights are [${weights.map((w) => w.originalName).join(', ')}], not [${names.join(', ')}]`;
  }
  const [gamma, beta] = [scale ? weights[0] : null, center ? weights[scale ? 1 : 0] : null];
  return { axis, momentum, epsilon, gamma, beta, movingMean: weights[names.length - 2], movingVariance: weights[names.length - 1] };
}

/** tfjs's doMovingAverage, op for op. */
function movingAverage(tf: Tf, variable: LayerVariable, value: Tensor, momentum: number): void {
  tf.tidy(() => {
    const decay = 1 - momentum;
    const original = variable.read();
    const updateDelta = tf.mul(tf.sub(original, value), decay);
    variable.write(tf.sub(original, updateDelta));
  });
}

export type Train = (x: Tensor, options: BatchNormTrainingOptions) => BatchNormTrainingResult;

/**
 * Replaces BatchNormalization.prototype.call so that training calls run `train` where `fused()` says the
 * fused kernel serves the backend; returns the function that puts tfjs's call back, or null without tf.layers.
 */
export function patchBatchNormalization(tf: Tf, train: Train, fused: () => boolean, notices: FallbackNotices): (() => void) | null {
  if (tf.layers === undefined) return null;
  // a named instance: an unnamed one would take a number from tfjs's counter and shift the user's layer names
  const proto: unknown = Object.getPrototypeOf(tf.layers.batchNormalization({ name: 'normkit_probe' }));
  if (!isPatchable(proto)) {
    notices.say('tf.layers.batchNormalization has no call method of its own here; its training path stays tfjs\'s');
    return null;
  }
  const original = proto.call;
  const settingsOf = new WeakMap<BatchNormLayer, Settings | string>();
  proto.call = function call(this: BatchNormLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : null) : inputs;
    if (!kwargs.training || x === null) return original.call(this, inputs, kwargs);
    const settings = settingsOf.get(this) ?? readSettings(this);
    settingsOf.set(this, settings);
    if (typeof settings === 'string') {
      notices.say(`layer '${this.name}': ${settings}; its training path stays tfjs's`);
      return original.call(this, inputs, kwargs);
    }
    if (!fused() || x.dtype !== 'float32') {
      notices.say(`tf.layers.batchNormalization training on backend '${tf.getBackend()}' with x ${x.dtype}: normkit serves float32 on cpu, wasm and webgpu; running tfjs's own`);
      return original.call(this, inputs, kwargs);
    }
    const { axis, momentum, epsilon, gamma, beta, movingMean, movingVariance } = settings;
    return tf.tidy(() => {
      const { y, mean, variance } = train(x, { axis, scale: gamma?.read() ?? null, offset: beta?.read() ?? null, epsilon });
      movingAverage(tf, movingMean, mean, momentum);
      movingAverage(tf, movingVariance, variance, momentum);
      return y;
    });
  };
  return () => {
    proto.call = original;
  };
}
