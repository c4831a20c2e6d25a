// The page's webgpu backend: offered when navigator.gpu gives an adapter; its dL/dx comes asynchronously.
import type { AsyncNormKernels } from 'normkit';
import { WebGpuNorm, normView, webgpuTypedKernels } from 'normkit';
import type { Params } from './params.ts';

export interface PageGpu {
  readonly kernels: AsyncNormKernels;
  readonly adapter: string;
}

/** The webgpu kernels on this page's adapter, or null (no navigator.gpu, no adapter, or no device). */
export async function startGpu(): Promise<PageGpu | null> {
  if (!('gpu' in navigator)) return null;
  try {
    const engine = await WebGpuNorm.create();
    const { vendor, architecture } = engine.device.adapterInfo;
    return { kernels: webgpuTypedKernels(engine), adapter: [vendor, architecture].filter((s) => s !== '').join(' ') || 'GPU' };
  } catch (error) {
    console.info('webgpu backend not offered:', error);
    return null;
  }
}

/** dL/dx of the page's BatchNorm1d(1) by the webgpu kernels (float32): forward for the statistics, then backward. */
export async function gpuInputGrad(kernels: AsyncNormKernels, params: Params): Promise<Float64Array> {
  const n = params.x.length;
  const view = normView({ kind: 'batch' }, [n, 1], 'channels-first');
  const x = Float32Array.from(params.x);
  const weight = Float32Array.of(params.gamma);
  const [mean, variance, rstd] = [new Float64Array(1), new Float64Array(1), new Float64Array(1)];
  await kernels.forwardTrain(new Float32Array(n), x, view, weight, Float32Array.of(params.beta), params.eps, mean, variance, rstd);
  const dx = new Float32Array(n);
  await kernels.backward(dx, new Float32Array(1), new Float32Array(1), Float32Array.from(params.dy), x, view, weight, mean, rstd, true);
  return Float64Array.from(dx);
}
