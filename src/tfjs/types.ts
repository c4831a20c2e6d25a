/**
 * The slice of TensorFlow.js that normkit/tfjs uses, as types only: the caller passes its own `tf`
 * namespace (`@tensorflow/tfjs`, or tfjs-core with tfjs-layers), so no tfjs code is imported here.
 */
import type * as core from '@tensorflow/tfjs-core';

export type { GradConfig, KernelConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';

/** The tfjs functions the integration calls; `import * as tf from '@tensorflow/tfjs'` fits it. */
export interface Tf {
  readonly getKernel: typeof core.getKernel;
  readonly registerKernel: typeof core.registerKernel;
  readonly unregisterKernel: typeof core.unregisterKernel;
  readonly registerGradient: typeof core.registerGradient;
  readonly unregisterGradient: typeof core.unregisterGradient;
  readonly engine: typeof core.engine;
  readonly getBackend: typeof core.getBackend;
  readonly tidy: typeof core.tidy;
  readonly sub: typeof core.sub;
  readonly mul: typeof core.mul;
  readonly ones: typeof core.ones;
  readonly zeros: typeof core.zeros;
  readonly moments: typeof core.moments;
  readonly batchNorm: typeof core.batchNorm;
  readonly reshape: typeof core.reshape;
  /** tfjs-layers, when present: its BatchNormalization layer gets normkit's training path. */
  readonly layers?: { batchNormalization(args: { name: string }): object };
}

/** tfjs's backends whose tensors are typed arrays normkit's kernels can read. */
export type TfBackendName = 'cpu' | 'wasm';
export const tfBackendNames: readonly TfBackendName[] = ['cpu', 'wasm'];

/** tfjs's backends normkit serves: cpu and wasm, and webgpu (its tensors' GPUBuffers, on tfjs's device). */
export type ServedBackendName = TfBackendName | 'webgpu';
export const servedBackendNames: readonly ServedBackendName[] = ['cpu', 'wasm', 'webgpu'];

export function isServedBackendName(name: string): name is ServedBackendName {
  return (servedBackendNames as readonly string[]).includes(name);
}
