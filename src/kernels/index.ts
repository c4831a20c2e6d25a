/** The backend record: every backend behind one contract, so layers and the conformance suite run on any. */
import { NormkitError } from '../errors.js';
import { jsKernels } from './js/norm.js';
import { referenceKernels } from './reference.js';
import type { DType } from '../core/float.js';
import { describeValue, setTensorStorage } from '../tensor.js';
import type { BackendName, NormKernels } from './contract.js';
import { residentOf, residentTensor, wasmAvailable, wasmKernels } from './wasm/backend.js';
import { webgpuAvailable, webgpuKernels } from './webgpu/sync-slot.js';
import { setReleasedCheck } from '../core/memory.js';

export const backends: Readonly<Record<BackendName, NormKernels>> = {
  reference: referenceKernels,
  js: jsKernels,
  wasm: wasmKernels,
  webgpu: webgpuKernels,
};

// new tensors (tensor(), wasm layers' outputs) live in wasm memory where wasm runs with shared memory, so wasm calls copy nothing
setTensorStorage((dtype, shape) => (wasmAvailable() ? residentTensor(dtype, shape) : null));
// a resident tensor's block returned by dispose() may belong to another tensor now (core/memory.ts)
setReleasedCheck((array) => (array instanceof Float32Array || array instanceof Float64Array ? residentOf(array)?.block.live === false : false));

export const backendNames: readonly BackendName[] = ['wasm', 'js', 'reference', 'webgpu'];

/**
 * Whether a backend can run here now (wasm needs WebAssembly SIMD, and in browsers `await wasmReady()`;
 * webgpu needs `await startWebGpu()` from normkit/node).
 */
export function backendAvailable(name: BackendName): boolean {
  if (name === 'wasm') return wasmAvailable();
  if (name === 'webgpu') return webgpuAvailable();
  return true;
}

/** Throws a 'dtype' NormkitError, naming `who`, where the backend does not compute in `dtype` (webgpu: float32 only). */
export function checkBackendDtype(name: BackendName, dtype: DType, who: string): void {
  const { dtypes } = backends[name];
  if (!dtypes.includes(dtype)) throw new NormkitError('dtype', `${who}: backend '${name}' computes in ${dtypes.join(', ')} only, not ${dtype}`);
}

/** The fastest backend available here: wasm where it runs, js otherwise. */
export function defaultBackend(): BackendName {
  return backendAvailable('wasm') ? 'wasm' : 'js';
}

export function isBackendName(name: string): name is BackendName {
  return (backendNames as readonly string[]).includes(name);
}

/**
 * The one check of a backend name a caller gives (an option, the layer's setter, getBackend, the CLI): a 'backend'
 * NormkitError, prefixed with `who` where given, unless it names a backend that runs here.
 */
export function resolveBackend(name: unknown, who?: string): BackendName {
  const prefix = who === undefined ? '' : `${who}: `;
  // a JavaScript caller can pass anything, '__proto__' included
  if (typeof name !== 'string' || !isBackendName(name)) {
    throw new NormkitError('backend', `${prefix}unknown backend ${describeValue(name)}: expected one of ${backendNames.join(', ')}`);
  }
  if (!backendAvailable(name)) {
    throw new NormkitError(
      'backend',
      `${prefix}backend '${name}' is not available here (wasm: await wasmReady() in browsers; webgpu: await startWebGpu() from normkit/node)`,
    );
  }
  return name;
}

export function getBackend(name: string): NormKernels {
  return backends[resolveBackend(name)];
}
