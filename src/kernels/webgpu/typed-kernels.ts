/**
 * The webgpu backend on typed arrays: upload, run on the GPU, download. Asynchronous, since a
 * download waits for the GPU; the Node facade (normkit/node) makes it synchronous on a worker.
 */
import { affineSize } from '../../core/layout.js';
import { NormkitError } from '../../errors.js';
import type { FloatArray } from '../../tensor.js';
import type { AsyncNormKernels } from '../types.js';
import type { GpuTensor, WebGpuNorm } from './engine.js';

/** The array itself when it is float32; webgpu has no float64 (WGSL has no f64). */
export function float32(a: FloatArray, what: string): Float32Array {
  if (a instanceof Float32Array) return a;
  throw new NormkitError('dtype', `webgpu computes in float32: ${what} is a Float64Array (use the js or wasm backend for float64)`);
}

export function webgpuTypedKernels(engine: WebGpuNorm): AsyncNormKernels {
  const held: GpuTensor[] = [];
  const upload = (a: FloatArray | null, what: string): GpuTensor | null => {
    if (a === null) return null;
    const t = engine.tensor(float32(a, what));
    held.push(t);
    return t;
  };
  const room = (length: number): GpuTensor => {
    const t = engine.tensor(length);
    held.push(t);
    return t;
  };
  const release = () => {
    for (const t of held.splice(0)) t.buffer.destroy();
  };
  return {
    name: 'webgpu',
    dtypes: ['float32'],
    async forwardTrain(y, x, view, weight, bias, eps, mean, variance, rstd) {
      const stats = engine.stats(mean.length);
      try {
        const out = float32(y, 'y');
        const ys = room(out.length);
        engine.forwardTrain(ys, upload(x, 'x')!, view, upload(weight, 'weight'), upload(bias, 'bias'), eps, stats);
        const [, values] = await Promise.all([engine.read(ys, out), engine.readStats(stats)]);
        mean.set(values.mean);
        variance.set(values.variance);
        rstd.set(values.rstd);
      } finally {
        stats.buffer.destroy();
        release();
      }
    },
    async forwardWithStats(y, x, view, weight, bias, mean, rstd) {
      const stats = engine.stats({ mean, rstd });
      try {
        const out = float32(y, 'y');
        const ys = room(out.length);
        engine.forwardWithStats(ys, upload(x, 'x')!, view, upload(weight, 'weight'), upload(bias, 'bias'), stats);
        await engine.read(ys, out);
      } finally {
        stats.buffer.destroy();
        release();
      }
    },
    async backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, batchStats) {
      const stats = engine.stats({ mean, rstd });
      try {
        const dxOut = float32(dx, 'dx');
        const dweightOut = dweight === null ? null : float32(dweight, 'dweight');
        const dbiasOut = dbias === null ? null : float32(dbias, 'dbias');
        const dxs = room(dxOut.length);
        const dweights = dweightOut === null ? null : room(affineSize(view));
        const dbiases = dbiasOut === null ? null : room(affineSize(view));
        engine.backward(dxs, dweights, dbiases, upload(dy, 'dy')!, upload(x, 'x')!, view, upload(weight, 'weight'), stats, batchStats);
        await Promise.all([
          engine.read(dxs, dxOut),
          dweights === null || dweightOut === null ? null : engine.read(dweights, dweightOut),
          dbiases === null || dbiasOut === null ? null : engine.read(dbiases, dbiasOut),
        ]);
      } finally {
        stats.buffer.destroy();
        release();
      }
    },
  };
}
