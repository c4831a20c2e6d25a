/**
 * The fused training kernel: one pass gives y, the batch mean and the biased batch variance (what
 * tf.moments gives tf.layers), and its gradient is one backward kernel: dx, dscale, doffset from two
 * reductions per channel (`sum dy`, `sum dy*xhat`) and one pass, instead of tfjs's graph of ~20 ops.
 */
import type { NormView } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import { describeValue } from '../tensor.js';
import type { NormKernels } from '../kernels/contract.js';
import { axisView } from './broadcast.js';
import type { TensorStore } from './tensors.js';
import { tensorStore } from './tensors.js';
import type { GradConfig, KernelConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo, Tf, TfBackendName } from './types.js';

export const BATCH_NORM_TRAIN = 'NormkitBatchNormTrain';
export const BATCH_NORM_TRAIN_GRAD = 'NormkitBatchNormTrainGrad';

/**
 * The float64 mean and rstd of a forward call, so backward uses them unrounded: by the call's attrs object,
 * which tfjs hands on to the gradient (a saved output's dataId is not kept: tfjs clones saved tensors, and
 * the wasm backend's clone gets a new one).
 */
const savedStats = new WeakMap<object, { readonly mean: Float64Array; readonly rstd: Float64Array }>();

/** The forward's float64 statistics where `mean` is still their float32 rounding (attrs reused for another call: not). */
function forwardStats(attrs: NamedAttrMap | undefined, mean: Float32Array): { readonly mean: Float64Array; readonly rstd: Float64Array } | undefined {
  const stats = attrs === undefined ? undefined : savedStats.get(attrs);
  return stats !== undefined && stats.mean.length === mean.length && stats.mean.every((m, i) => Math.fround(m) === mean[i]) ? stats : undefined;
}

type Inputs = Parameters<KernelFunc>[0]['inputs'];

function attr(attrs: NamedAttrMap | undefined, name: string): number {
  const value = attrs?.[name];
  if (typeof value !== 'number') throw new NormkitError('option', `${BATCH_NORM_TRAIN}: attribute '${name}' must be a number, got ${describeValue(value)}`);
  return value;
}

function input(inputs: Inputs, name: string): TensorInfo {
  const t = inputs[name];
  if (t === undefined) throw new NormkitError('option', `${BATCH_NORM_TRAIN}: input '${name}' is missing`);
  return t;
}

function storeFor(name: TfBackendName, backend: object): TensorStore {
  const store = tensorStore(name, backend);
  if (store === null) throw new NormkitError('backend', `${BATCH_NORM_TRAIN}: the ${name} backend object is not the one normkit knows`);
  return store;
}

/** Forward: inputs x, scale, offset; attrs axis (non-negative), varianceEpsilon; outputs y, mean [C], variance [C]. */
function forward(name: TfBackendName, kernels: NormKernels): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const store = storeFor(name, backend);
    const [x, scale, offset] = ['x', 'scale', 'offset'].map((n) => input(inputs, n));
    const view = axisView(x.shape, attr(attrs, 'axis'));
    const c = view.groups;
    const [y, mean, variance] = [store.make(x.shape), store.make([c]), store.make([c])];
    const [mean64, variance64, rstd] = [new Float64Array(c), new Float64Array(c), new Float64Array(c)];
    kernels.forwardTrain(store.values(y), store.values(x), view, store.values(scale), store.values(offset), attr(attrs, 'varianceEpsilon'), mean64, variance64, rstd);
    store.values(mean).set(mean64);
    store.values(variance).set(variance64);
    if (attrs !== undefined) savedStats.set(attrs, { mean: mean64, rstd });
    return [y, mean, variance];
  };
}

/**
 * Where the batch statistics themselves carry gradient (dmean, dvariance not all zero):
 * dx += dmean/M + dvariance*2*(x - mean)/M, since d mean/dx = 1/M and d var/dx = 2*(x - mean)/M.
 */
function addStatisticsGradient(dx: Float32Array, x: Float32Array, view: NormView, mean: Float64Array, dmean: Float32Array, dvariance: Float32Array): void {
  if (dmean.every((v) => v === 0) && dvariance.every((v) => v === 0)) return;
  const { span: S, groups: G, inner: B } = view;
  const m = S * B;
  // per group: dx += a + b*(x - mean), with a = dmean/M and b = 2*dvariance/M
  const a = Float64Array.from(dmean, (v) => v / m);
  const b = Float64Array.from(dvariance, (v) => (2 * v) / m);
  for (let s = 0; s < S; s++) {
    for (let g = 0; g < G; g++) {
      const base = (s * G + g) * B;
      const ag = a[g];
      const bg = b[g];
      const mg = mean[g];
      for (let i = 0; i < B; i++) dx[base + i] += ag + bg * (x[base + i] - mg);
    }
  }
}

/** Backward: inputs dy, x, scale, mean, variance, dmean, dvariance; outputs dx, dscale, doffset. */
function backward(name: TfBackendName, kernels: NormKernels): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const store = storeFor(name, backend);
    const [dy, x, scale, mean, variance, dmean, dvariance] = ['dy', 'x', 'scale', 'mean', 'variance', 'dmean', 'dvariance'].map((n) => input(inputs, n));
    const view = axisView(x.shape, attr(attrs, 'axis'));
    const c = view.groups;
    const [dx, dscale, doffset] = [store.make(x.shape), store.make([c]), store.make([c])];
    const eps = attr(attrs, 'varianceEpsilon');
    // float32 statistics where the forward's float64 ones are gone (a tensor made elsewhere)
    const stats = forwardStats(attrs, store.values(mean)) ?? {
      mean: Float64Array.from(store.values(mean)),
      rstd: Float64Array.from(store.values(variance), (v) => 1 / Math.sqrt(v + eps)),
    };
    const [dxValues, xValues] = [store.values(dx), store.values(x)];
    kernels.backward(dxValues, store.values(dscale), store.values(doffset), store.values(dy), xValues, view, store.values(scale), stats.mean, stats.rstd, true);
    addStatisticsGradient(dxValues, xValues, view, stats.mean, store.values(dmean), store.values(dvariance));
    return [dx, dscale, doffset];
  };
}

/** The forward and backward kernels for one tfjs backend; `setupFunc` runs whenever tfjs switches to it. */
export function trainingKernels(name: TfBackendName, kernels: NormKernels, setupFunc: () => void): KernelConfig[] {
  return [
    { kernelName: BATCH_NORM_TRAIN, backendName: name, kernelFunc: forward(name, kernels), setupFunc },
    { kernelName: BATCH_NORM_TRAIN_GRAD, backendName: name, kernelFunc: backward(name, kernels) },
  ];
}

/**
 * The gradient of the forward kernel: one backward kernel call, its three outputs handed to x, scale, offset.
 * On webgpu the forward has a fourth output, normkit's statistics (webgpu-kernels.ts), which the backward takes.
 */
export function trainingGradient(tf: Tf): GradConfig {
  return {
    kernelName: BATCH_NORM_TRAIN,
    inputsToSave: ['x', 'scale'],
    outputsToSave: [false, true, true, true],
    gradFunc: (dys, saved, attrs) => {
      // tfjs hands a multi-output kernel one dy per output (zeros where an output takes no part)
      if (!Array.isArray(dys) || (dys.length !== 3 && dys.length !== 4)) {
        throw new NormkitError('grad-shape', `${BATCH_NORM_TRAIN}: expected one gradient per output (y, mean, variance), got ${Array.isArray(dys) ? `${dys.length}` : 'a single tensor'}`);
      }
      const [dy, dmean, dvariance] = dys;
      const [x, scale, mean, variance] = saved;
      const inputs = { dy, x, scale, mean, variance, dmean, dvariance, ...(saved.length > 4 ? { stats: saved[4] } : {}) };
      const [dx, dscale, doffset] = tf.engine().runKernel<Tensor[]>(BATCH_NORM_TRAIN_GRAD, inputs, attrs);
      return { x: () => dx, scale: () => dscale, offset: () => doffset };
    },
  };
}
