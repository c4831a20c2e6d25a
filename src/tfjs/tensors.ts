/**
 * Tensor data on tfjs's cpu and wasm backends, in place: the cpu backend's own Float32Array
 * (`backend.data.get(dataId).values`), or a view of the wasm backend's heap. Outputs are made by the
 * backend; on wasm, make every output before taking views (an allocation may grow and detach the heap).
 */
import { NormkitError } from '../errors.js';
import { formatShape, numel } from '../tensor.js';
import type { TensorInfo } from './types.js';
import type { TfBackendName } from './types.js';

export interface TensorStore {
  /** A new float32 tensor of `shape`, owned by the backend. */
  make(shape: readonly number[]): TensorInfo;
  /** The float32 values of a tensor, without a copy. */
  values(info: TensorInfo): Float32Array;
}

interface CpuBackend {
  readonly data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
}

interface WasmBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): unknown;
}

function isCpuBackend(backend: object): backend is CpuBackend {
  return 'data' in backend && 'makeTensorInfo' in backend && typeof backend.makeTensorInfo === 'function';
}

function isWasmBackend(backend: object): backend is WasmBackend {
  return 'typedArrayFromHeap' in backend && typeof backend.typedArrayFromHeap === 'function' && 'makeOutput' in backend;
}

function float32(values: unknown, info: TensorInfo): Float32Array {
  if (values instanceof Float32Array) return values;
  throw new NormkitError('dtype', `normkit/tfjs: expected a float32 tensor, got ${info.dtype} ${formatShape(info.shape)}`);
}

/** The store for a backend object tfjs hands a kernel, or null where it is not the one `name` says. */
export function tensorStore(name: TfBackendName, backend: object): TensorStore | null {
  if (name === 'cpu' && isCpuBackend(backend)) {
    return {
      make: (shape) => backend.makeTensorInfo([...shape], 'float32', new Float32Array(numel(shape))),
      values: (info) => float32(backend.data.get(info.dataId).values, info),
    };
  }
  if (name === 'wasm' && isWasmBackend(backend)) {
    return {
      make: (shape) => backend.makeOutput([...shape], 'float32'),
      values: (info) => float32(backend.typedArrayFromHeap(info), info),
    };
  }
  return null;
}
