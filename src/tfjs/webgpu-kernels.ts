/**
 * normkit's kernels on tfjs's webgpu backend: FusedBatchNorm (inference), the fused training kernel
 * (y, batch mean, biased batch variance, and normkit's statistics as a fourth output for the gradient)
 * and its one-kernel gradient, run by normkit's WGSL engine (kernels/webgpu/engine.ts: float-float
 * statistics) on tfjs's own GPUDevice and its tensors' GPUBuffers. Nothing goes through the CPU.
 *
 * Why normkit's own pipelines rather than tfjs WebGPUPrograms: a WebGPUProgram has one output, read-only
 * inputs and tfjs's generated preamble and uniforms, while normkit's reductions are several dispatches
 * that share scratch buffers (per-chunk partials, per-group sums, a statistics block), use workgroup
 * memory and override constants, and keep the float-float error terms alive with a run-time zero in their
 * own uniform. Expressing them as programs would mean a second copy of the shader; submitting normkit's
 * command buffers on tfjs's queue, after tfjs's own pending work, keeps one shader and the same order.
 */
import type { NormView } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import type { GpuStats, GpuTensor } from '../kernels/webgpu/engine.js';
import { WebGpuNorm } from '../kernels/webgpu/engine.js';
import { formatShape, numel } from '../tensor.js';
import { axisView, paramView } from './broadcast.js';
import type { FallbackNotices } from './fallback.js';
import { FUSED_BATCH_NORM } from './inference.js';
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD } from './training.js';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from './types.js';
import { StatsPipelines } from './webgpu-stats.js';
import type { TfWebGpuBackend } from './webgpu-tensors.js';
import { bufferOf, flushTfjs, isTfWebGpuBackend, makeOutput, zerosOnHost } from './webgpu-tensors.js';

/** float32 values per statistics group in normkit's layout (two vec4). */
const STATS_FLOATS = 8;

interface Gpu {
  readonly engine: WebGpuNorm;
  readonly pipelines: StatsPipelines;
}

/** normkit's engine and helper pipelines per tfjs device (made on first use). */
const perDevice = new WeakMap<GPUDevice, Gpu>();

/** Whether the device runs on the CPU (SwiftShader, Chromium's adapter where there is no GPU): few workgroups at a time. */
function cpuAdapter(device: GPUDevice): boolean {
  // GPUDevice.adapterInfo: Chromium 131 and later
  const { adapterInfo } = device as { adapterInfo?: GPUAdapterInfo };
  return adapterInfo !== undefined && (adapterInfo.architecture === 'swiftshader' || adapterInfo.description.toLowerCase().includes('swiftshader'));
}

function gpuFor(device: GPUDevice): Gpu {
  let gpu = perDevice.get(device);
  if (gpu === undefined) {
    // the engine installs an uncaptured-error handler for its own finish(); tfjs's device keeps its owner's
    const handler = device.onuncapturederror;
    const engine = new WebGpuNorm(device, cpuAdapter(device) ? { minWorkgroups: 1 } : {});
    device.onuncapturederror = handler;
    gpu = { engine, pipelines: new StatsPipelines(device) };
    perDevice.set(device, gpu);
  }
  return gpu;
}

type Inputs = Parameters<KernelFunc>[0]['inputs'];

function attr(attrs: NamedAttrMap | undefined, name: string): number {
  const value = attrs?.[name];
  if (typeof value !== 'number') throw new NormkitError('option', `${BATCH_NORM_TRAIN}: attribute '${name}' must be a number, got ${JSON.stringify(value)}`);
  return value;
}

function input(inputs: Inputs, name: string): TensorInfo {
  const t = inputs[name];
  if (t === undefined) throw new NormkitError('option', `${BATCH_NORM_TRAIN}: input '${name}' is missing`);
  return t;
}

function webgpuBackend(backend: object): TfWebGpuBackend {
  if (!isTfWebGpuBackend(backend)) throw new NormkitError('backend', `${BATCH_NORM_TRAIN}: the webgpu backend object is not tfjs-backend-webgpu's WebGPUBackend (4.22)`);
  return backend;
}

function gpuInput(backend: TfWebGpuBackend, info: TensorInfo, name: string): GpuTensor {
  const gpu = bufferOf(backend, info);
  if (gpu === null) throw new NormkitError('backend', `${BATCH_NORM_TRAIN}: input '${name}' ${formatShape(info.shape)} is held in a GPU texture, not a buffer`);
  return gpu;
}

/** Room for normkit's statistics of `count` groups, as a tfjs tensor (tfjs owns and frees its buffer). */
function statsOutput(backend: TfWebGpuBackend, count: number): { info: TensorInfo; stats: GpuStats } {
  const { info, gpu } = makeOutput(backend, [STATS_FLOATS * count]);
  return { info, stats: { buffer: gpu.buffer, count } };
}

/** Forward: inputs x, scale, offset; attrs axis (non-negative), varianceEpsilon; outputs y, mean [C], variance [C], statistics [8C]. */
const forward: KernelFunc = ({ inputs, backend: given, attrs }) => {
  const backend = webgpuBackend(given);
  const [x, scale, offset] = ['x', 'scale', 'offset'].map((n) => input(inputs, n));
  if (numel(x.shape) === 0) throw new NormkitError('shape', `${BATCH_NORM_TRAIN}: x ${formatShape(x.shape)} has no values to take statistics of`);
  const view = axisView(x.shape, attr(attrs, 'axis'));
  const c = view.groups;
  const [xs, scales, offsets] = [gpuInput(backend, x, 'x'), gpuInput(backend, scale, 'scale'), gpuInput(backend, offset, 'offset')];
  const [y, mean, variance] = [makeOutput(backend, x.shape), makeOutput(backend, [c]), makeOutput(backend, [c])];
  const { info: statsInfo, stats } = statsOutput(backend, c);
  const { engine, pipelines } = gpuFor(backend.device);
  flushTfjs(backend);
  engine.forwardTrain(y.gpu, xs, view, scales, offsets, attr(attrs, 'varianceEpsilon'), stats);
  pipelines.unpack(mean.gpu, variance.gpu, stats);
  return [y.info, mean.info, variance.info, statsInfo];
};

/**
 * Backward: inputs dy, x, scale, mean, variance, dmean, dvariance and (from the forward) statistics;
 * outputs dx, dscale, doffset. Where the forward's statistics are not given, they are packed from the
 * float32 mean and variance.
 */
const backward: KernelFunc = ({ inputs, backend: given, attrs }) => {
  const backend = webgpuBackend(given);
  const [dy, x, scale, mean, variance, dmean, dvariance] = ['dy', 'x', 'scale', 'mean', 'variance', 'dmean', 'dvariance'].map((n) => input(inputs, n));
  const view = axisView(x.shape, attr(attrs, 'axis'));
  const c = view.groups;
  // tfjs hands zeros, made on the CPU, for outputs that take no part: then the statistics pass is skipped
  const statisticsCarryGradient = !(zerosOnHost(backend, dmean) && zerosOnHost(backend, dvariance));
  const [dys, xs, scales] = [gpuInput(backend, dy, 'dy'), gpuInput(backend, x, 'x'), gpuInput(backend, scale, 'scale')];
  const [dx, dscale, doffset] = [makeOutput(backend, x.shape), makeOutput(backend, [c]), makeOutput(backend, [c])];
  const { engine, pipelines } = gpuFor(backend.device);
  const saved = inputs.stats;
  const packed = saved === undefined ? statsOutput(backend, c) : null;
  const stats: GpuStats = packed?.stats ?? { buffer: gpuInput(backend, saved!, 'stats').buffer, count: c };
  const statisticsGrad = statisticsCarryGradient ? [gpuInput(backend, dmean, 'dmean'), gpuInput(backend, dvariance, 'dvariance')] : null;
  const means = packed === null ? null : [gpuInput(backend, mean, 'mean'), gpuInput(backend, variance, 'variance')];
  flushTfjs(backend);
  if (packed !== null && means !== null) pipelines.pack(stats, means[0], means[1], attr(attrs, 'varianceEpsilon'));
  engine.backward(dx.gpu, dscale.gpu, doffset.gpu, dys, xs, view, scales, stats, true);
  if (statisticsGrad !== null) pipelines.statisticsGrad(dx.gpu, xs, view, stats, statisticsGrad[0], statisticsGrad[1]);
  if (packed !== null) backend.disposeData(packed.info.dataId);
  return [dx.info, dscale.info, doffset.info];
};

/** The training kernels for tfjs's webgpu backend; `setupFunc` runs whenever tfjs switches to it. */
export function webgpuTrainingKernels(setupFunc: () => void): KernelConfig[] {
  return [
    { kernelName: BATCH_NORM_TRAIN, backendName: 'webgpu', kernelFunc: forward, setupFunc },
    { kernelName: BATCH_NORM_TRAIN_GRAD, backendName: 'webgpu', kernelFunc: backward },
  ];
}

interface InferenceCall {
  readonly backend: TfWebGpuBackend;
  readonly view: NormView;
  readonly x: GpuTensor;
  readonly mean: GpuTensor;
  readonly variance: GpuTensor;
  readonly scale: GpuTensor | null;
  readonly offset: GpuTensor | null;
}

/** What normkit runs for these FusedBatchNorm inputs, or why it leaves them to tfjs. */
function planInference(given: object, inputs: Inputs): InferenceCall | string {
  if (!isTfWebGpuBackend(given)) return "the webgpu backend object is not tfjs-backend-webgpu's WebGPUBackend (4.22)";
  const { x, mean, variance, scale, offset } = inputs;
  if (x === undefined || mean === undefined || variance === undefined) return 'x, mean and variance are required';
  const tensors = [x, mean, variance, scale, offset];
  if (tensors.some((t) => t !== undefined && t.dtype !== 'float32')) return `dtypes ${tensors.map((t) => t?.dtype ?? 'none').join(', ')} (normkit takes float32)`;
  if (numel(x.shape) === 0) return 'x has no values';
  const params = [mean, variance, scale, offset];
  const view = paramView(x.shape, params.map((t) => t?.shape));
  if (typeof view === 'string') return view;
  if (params.some((t) => t !== undefined && numel(t.shape) !== view.groups)) return `a parameter with one value where the others vary along x (${view.groups} groups)`;
  const [xs, means, variances, scales, offsets] = [x, mean, variance, scale, offset].map((t) => (t === undefined ? null : bufferOf(given, t)));
  const held = [xs, means, variances, ...(scale === undefined ? [] : [scales]), ...(offset === undefined ? [] : [offsets])];
  if (held.includes(null) || xs === null || means === null || variances === null) return 'a tensor is held in a GPU texture, not a buffer';
  const buffers = [xs, means, variances, scales, offsets].flatMap((g) => (g === null ? [] : [g.buffer]));
  if (new Set(buffers).size !== buffers.length) return 'two inputs share one tensor';
  return { backend: given, view, x: xs, mean: means, variance: variances, scale: scales, offset: offsets };
}

const shapeOf = (t: TensorInfo | undefined): string => (t === undefined ? 'none' : formatShape(t.shape));

/** tfjs's FusedBatchNorm kernel for webgpu, on normkit's kernels; `original` runs what normkit does not cover. */
export function webgpuInferenceKernel(original: KernelConfig, notices: FallbackNotices): KernelConfig {
  const kernelFunc: KernelFunc = (params) => {
    const { inputs, backend, attrs } = params;
    const call = planInference(backend, inputs);
    if (typeof call === 'string') {
      const { x, mean, variance, scale, offset } = inputs;
      notices.say(`FusedBatchNorm on webgpu with x ${shapeOf(x)}, mean ${shapeOf(mean)}, variance ${shapeOf(variance)}, scale ${shapeOf(scale)}, offset ${shapeOf(offset)}: ${call}; running tfjs's own kernel`);
      return original.kernelFunc(params);
    }
    const epsilon = attrs?.varianceEpsilon;
    const eps = typeof epsilon === 'number' ? epsilon : 1e-3; // tfjs's default
    const { backend: gpuBackend, view } = call;
    const y = makeOutput(gpuBackend, inputs.x!.shape);
    const { info: statsInfo, stats } = statsOutput(gpuBackend, view.groups);
    const { engine, pipelines } = gpuFor(gpuBackend.device);
    flushTfjs(gpuBackend);
    pipelines.pack(stats, call.mean, call.variance, eps);
    engine.forwardWithStats(y.gpu, call.x, view, call.scale, call.offset, stats);
    gpuBackend.disposeData(statsInfo.dataId);
    return y.info;
  };
  return {
    kernelName: FUSED_BATCH_NORM,
    backendName: 'webgpu',
    kernelFunc,
    ...(original.setupFunc === undefined ? {} : { setupFunc: original.setupFunc }),
    ...(original.disposeFunc === undefined ? {} : { disposeFunc: original.disposeFunc }),
  };
}
