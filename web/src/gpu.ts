// The page's webgpu backend, asked for only when the reader chooses it (so a browser without WebGPU logs
// nothing); its dL/dx comes asynchronously. What happened is said in the page, never in the console.
import type { AsyncNormKernels } from 'normkit';
import { WebGpuNorm, normView, requestDevice, webgpuTypedKernels } from 'normkit';
import type { Params } from './params.ts';

export interface PageGpu {
  readonly kernels: AsyncNormKernels;
  readonly adapter: string;
}

export type GpuStart = { readonly gpu: PageGpu } | { readonly reason: 'gpuNone' | 'gpuNoAdapter' } | { readonly reason: 'gpuFailed'; readonly message: string };

/** The webgpu kernels on this page's adapter, or why there are none. */
export async function startGpu(): Promise<GpuStart> {
  if (!('gpu' in navigator)) return { reason: 'gpuNone' };
  const adapter = await navigator.gpu.requestAdapter();
  if (adapter === null) return { reason: 'gpuNoAdapter' };
  try {
    // normkit's device request (its buffer limits) on the adapter already found
    const device = await requestDevice({ requestAdapter: () => Promise.resolve(adapter) });
    const engine = await WebGpuNorm.create({ device });
    const { vendor, architecture } = adapter.info;
    return { gpu: { kernels: webgpuTypedKernels(engine), adapter: [vendor, architecture].filter((s) => s !== '').join(' ') || 'GPU' } };
  } catch (error) {
    return { reason: 'gpuFailed', message: error instanceof Error ? error.message : String(error) };
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
