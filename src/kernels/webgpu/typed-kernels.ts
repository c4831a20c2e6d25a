/**
 * The webgpu backend on typed arrays: upload, run on the GPU, download. Asynchronous, since a
 * download waits for the GPU; the Node facade (normkit/node) makes it synchronous on a worker.
 */
import { affineSize } from '../../core/layout.js';
import { NormkitError } from '../../errors.js';
import type { FloatArray } from '../../core/float.js';
import type { AsyncNormKernels } from '../contract.js';
import type { GpuStats, GpuTensor, WebGpuNorm } from './engine.js';

/** The array itself when it is float32; webgpu has no float64 (WGSL has no f64). */
export function float32(a: FloatArray, what: string): Float32Array {
  if (a instanceof Float32Array) return a;
  throw new NormkitError('dtype', `webgpu computes in float32: ${what} is a Float64Array (use the js or wasm backend for float64)`);
}

/** The buffers of one call: made on demand, destroyed when the call ends (calls may overlap). */
class CallBuffers {
  readonly #engine: WebGpuNorm;
  readonly #held: { buffer: GPUBuffer }[] = [];

  constructor(engine: WebGpuNorm) {
    this.#engine = engine;
  }

  upload(a: FloatArray | null, what: string): GpuTensor | null {
    return a === null ? null : this.#hold(this.#engine.tensor(float32(a, what)));
  }

  room(length: number): GpuTensor {
    return this.#hold(this.#engine.tensor(length));
  }

  stats(source: Parameters<WebGpuNorm['stats']>[0]): GpuStats {
    return this.#hold(this.#engine.stats(source));
  }

  release(): void {
    for (const t of this.#held.splice(0)) t.buffer.destroy();
  }

  #hold<T extends { buffer: GPUBuffer }>(t: T): T {
    this.#held.push(t);
    return t;
  }
}

export function webgpuTypedKernels(engine: WebGpuNorm): AsyncNormKernels {
  const call = async (body: (buffers: CallBuffers) => Promise<void>): Promise<void> => {
    const buffers = new CallBuffers(engine);
    try {
      await body(buffers);
    } finally {
      buffers.release();
    }
  };
  return {
    name: 'webgpu',
    dtypes: ['float32'],
    forwardTrain: (y, x, view, weight, bias, eps, mean, variance, rstd) =>
      call(async (b) => {
        const out = float32(y, 'y');
        const ys = b.room(out.length);
        const stats = b.stats(mean.length);
        engine.forwardTrain(ys, b.upload(x, 'x')!, view, b.upload(weight, 'weight'), b.upload(bias, 'bias'), eps, stats);
        const [, values] = await Promise.all([engine.read(ys, out), engine.readStats(stats)]);
        mean.set(values.mean);
        variance.set(values.variance);
        rstd.set(values.rstd);
      }),
    forwardWithStats: (y, x, view, weight, bias, mean, rstd) =>
      call(async (b) => {
        const out = float32(y, 'y');
        const ys = b.room(out.length);
        engine.forwardWithStats(ys, b.upload(x, 'x')!, view, b.upload(weight, 'weight'), b.upload(bias, 'bias'), b.stats({ mean, rstd }));
        await engine.read(ys, out);
      }),
    backward: (dx, dweight, dbias, dy, x, view, weight, mean, rstd, batchStats) =>
      call(async (b) => {
        const dxOut = float32(dx, 'dx');
        const dweightOut = dweight === null ? null : float32(dweight, 'dweight');
        const dbiasOut = dbias === null ? null : float32(dbias, 'dbias');
        const dxs = b.room(dxOut.length);
        const dweights = dweightOut === null ? null : b.room(affineSize(view));
        const dbiases = dbiasOut === null ? null : b.room(affineSize(view));
        engine.backward(dxs, dweights, dbiases, b.upload(dy, 'dy')!, b.upload(x, 'x')!, view, b.upload(weight, 'weight'), b.stats({ mean, rstd }), batchStats);
        await Promise.all([
          engine.read(dxs, dxOut),
          dweights === null || dweightOut === null ? null : engine.read(dweights, dweightOut),
          dbiases === null || dbiasOut === null ? null : engine.read(dbiases, dbiasOut),
        ]);
      }),
  };
}
