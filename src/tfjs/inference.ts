/**
 * FusedBatchNorm (tf.batchNorm, and tf.layers' inference path) on normkit's kernels:
 * y = (x - mean)*rstd*scale + offset with rstd = 1/sqrt(variance + eps) once per channel, in float64.
 * Unlike tfjs's cpu and wasm kernels, which step through each parameter as if it varied along x's last
 * axes, parameters of shape [1, C, 1, 1] (axis 1) are read per channel (tfjs issue #1106).
 */
import type { NormView } from '../core/layout.js';
import type { NormKernels } from '../kernels/contract.js';
import { formatShape } from '../tensor.js';
import { paramView, perGroup } from './broadcast.js';
import type { FallbackNotices } from './fallback.js';
import type { TensorStore } from './tensors.js';
import { tensorStore } from './tensors.js';
import type { KernelConfig, KernelFunc, TensorInfo, TfBackendName } from './types.js';

export const FUSED_BATCH_NORM = 'FusedBatchNorm';

type Inputs = Parameters<KernelFunc>[0]['inputs'];

interface Call {
  readonly store: TensorStore;
  readonly x: TensorInfo;
  readonly mean: TensorInfo;
  readonly variance: TensorInfo;
  readonly view: NormView;
}

/** What normkit runs for these inputs, or why it leaves them to tfjs. */
function planCall(name: TfBackendName, backend: object, inputs: Inputs): Call | string {
  const { x, mean, variance, scale, offset } = inputs;
  const store = tensorStore(name, backend);
  if (store === null) return `the ${name} backend object is not the one normkit knows`;
  if (x === undefined || mean === undefined || variance === undefined) return 'x, mean and variance are required';
  const tensors = [x, mean, variance, scale, offset];
  if (tensors.some((t) => t !== undefined && t.dtype !== 'float32')) return `dtypes ${tensors.map((t) => t?.dtype ?? 'none').join(', ')} (normkit takes float32)`;
  const view = paramView(x.shape, [mean, variance, scale, offset].map((t) => t?.shape));
  return typeof view === 'string' ? view : { store, x, mean, variance, view };
}

const shapeOf = (t: TensorInfo | undefined): string => (t === undefined ? 'none' : formatShape(t.shape));

/** tfjs's FusedBatchNorm kernel for `name`, on normkit's kernels; `original` runs what normkit does not cover. */
export function inferenceKernel(name: TfBackendName, original: KernelConfig, kernels: NormKernels, notices: FallbackNotices): KernelConfig {
  const kernelFunc: KernelFunc = (params) => {
    const { inputs, backend, attrs } = params;
    const call = planCall(name, backend, inputs);
    if (typeof call === 'string') {
      const { x, mean, variance, scale, offset } = inputs;
      notices.say(`FusedBatchNorm on ${name} with x ${shapeOf(x)}, mean ${shapeOf(mean)}, variance ${shapeOf(variance)}, scale ${shapeOf(scale)}, offset ${shapeOf(offset)}: ${call}; running tfjs's own kernel`);
      return original.kernelFunc(params);
    }
    const { store, x, mean, variance, view } = call;
    const epsilon = attrs?.varianceEpsilon;
    const eps = typeof epsilon === 'number' ? epsilon : 1e-3; // tfjs's default
    const y = store.make(x.shape);
    if (x.shape.includes(0)) return y;
    const { groups } = view;
    const mean64 = Float64Array.from(perGroup(store.values(mean), groups));
    const rstd = Float64Array.from(perGroup(store.values(variance), groups), (v) => 1 / Math.sqrt(v + eps));
    const weight = inputs.scale === undefined ? null : perGroup(store.values(inputs.scale), groups);
    const bias = inputs.offset === undefined ? null : perGroup(store.values(inputs.offset), groups);
    kernels.forwardWithStats(store.values(y), store.values(x), view, weight, bias, mean64, rstd);
    return y;
  };
  return {
    kernelName: FUSED_BATCH_NORM,
    backendName: name,
    kernelFunc,
    // the original's set-up (the wasm backend binds its C function there) still runs: fallbacks and restore need it
    ...(original.setupFunc === undefined ? {} : { setupFunc: original.setupFunc }),
    ...(original.disposeFunc === undefined ? {} : { disposeFunc: original.disposeFunc }),
  };
}
