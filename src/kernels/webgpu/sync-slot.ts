/**
 * The webgpu entry of the backend record: synchronous, as the contract is, once a synchronous
 * implementation is installed (Node: startWebGpu() from normkit/node runs the GPU on a worker thread
 * and waits for it). Browsers, where no page thread may block, use webgpuTypedKernels directly.
 */
import { NormkitError } from '../../errors.js';
import type { NormKernels } from '../contract.js';

let installed: NormKernels | null = null;

/** Installs (or, with null, removes) the synchronous webgpu implementation. */
export function setWebGpuKernels(kernels: NormKernels | null): void {
  installed = kernels;
}

export function webgpuAvailable(): boolean {
  return installed !== null;
}

function ready(): NormKernels {
  if (installed === null) {
    throw new NormkitError('backend', "the webgpu backend is not started: in Node, await startWebGpu() from 'normkit/node' first; in browsers use WebGpuNorm or webgpuTypedKernels (asynchronous)");
  }
  return installed;
}

export const webgpuKernels: NormKernels = {
  name: 'webgpu',
  dtypes: ['float32'],
  forwardTrain(...args) {
    ready().forwardTrain(...args);
  },
  forwardWithStats(...args) {
    ready().forwardWithStats(...args);
  },
  backward(...args) {
    ready().backward(...args);
  },
};
