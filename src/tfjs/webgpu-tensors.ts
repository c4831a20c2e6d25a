/**
 * Tensors of tfjs's webgpu backend (@tensorflow/tfjs-backend-webgpu 4.22, `WebGPUBackend`) as normkit's
 * GPU tensors: the GPUBuffer tfjs keeps for a tensor (`tensorMap.get(dataId).resource` after
 * `uploadToGPU`), outputs made by the backend, and the hand-over of the queue. tfjs records its programs
 * into one command encoder and submits it in batches; normkit submits its own command buffers on the same
 * queue, so tfjs's pending work (which produced normkit's inputs) is submitted first. Nothing is read back.
 */
import { NormkitError } from '../errors.js';
import { formatShape, numel } from '../tensor.js';
import type { GpuTensor } from '../kernels/webgpu/engine.js';
import type { TensorInfo } from './types.js';

/** The members of tfjs's WebGPUBackend this uses (all public in 4.22's backend_webgpu.d.ts). */
export interface TfWebGpuBackend {
  readonly device: GPUDevice;
  readonly tensorMap: { get(dataId: object): { resource?: unknown; values?: unknown } | undefined };
  makeTensorInfo(shape: number[], dtype: 'float32'): TensorInfo;
  disposeData(dataId: object): boolean;
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export function isTfWebGpuBackend(backend: object): backend is TfWebGpuBackend {
  return (
    'device' in backend &&
    'tensorMap' in backend &&
    'uploadToGPU' in backend &&
    typeof backend.uploadToGPU === 'function' &&
    'submitQueue' in backend &&
    typeof backend.submitQueue === 'function' &&
    'ensureCommandEncoderReady' in backend &&
    'endComputePassEncoder' in backend
  );
}

/** A tensor's GPUBuffer (uploaded by tfjs's own path where its values are still on the CPU), or null where tfjs holds it in a texture. */
export function bufferOf(backend: TfWebGpuBackend, info: TensorInfo): GpuTensor | null {
  if (info.dtype !== 'float32') throw new NormkitError('dtype', `normkit/tfjs webgpu: expected a float32 tensor, got ${info.dtype} ${formatShape(info.shape)}`);
  backend.uploadToGPU(info.dataId);
  const resource = backend.tensorMap.get(info.dataId)?.resource;
  return resource instanceof GPUBuffer ? { buffer: resource, length: numel(info.shape) } : null;
}

/** A new float32 output of `shape` with its GPUBuffer allocated by tfjs. */
export function makeOutput(backend: TfWebGpuBackend, shape: readonly number[]): { info: TensorInfo; gpu: GpuTensor } {
  const info = backend.makeTensorInfo([...shape], 'float32');
  const gpu = bufferOf(backend, info);
  if (gpu === null) throw new NormkitError('backend', 'normkit/tfjs webgpu: tfjs gave an output without a GPUBuffer');
  return { info, gpu };
}

/** Whether a tensor is all zeros while its values are still tfjs's CPU array (as the zero gradients tfjs makes for unused outputs are); false where unknown. */
export function zerosOnHost(backend: TfWebGpuBackend, info: TensorInfo): boolean {
  const data = backend.tensorMap.get(info.dataId);
  const values = data?.resource == null ? data?.values : undefined;
  return values instanceof Float32Array && values.every((v) => v === 0);
}

/** Submits tfjs's recorded work, so that what normkit submits next runs after it. */
export function flushTfjs(backend: TfWebGpuBackend): void {
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
}
