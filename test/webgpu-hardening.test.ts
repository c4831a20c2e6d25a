// Regression tests for the webgpu repros of the hardening issue and the float-float exactness issue: SharedArrayBuffer
// inputs, 2^31 values, magnitudes near float32's range, dx where its terms cancel, and random cases against float64.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { NormView, Reduction } from '../src/core/layout.ts';
import { affineSize, normView, statsCount } from '../src/core/layout.ts';
import { NormkitError } from '../src/errors.ts';
import { backends } from '../src/kernels/index.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import { GroupNorm } from '../src/nn/groupnorm.ts';
import { createNodeWebGpu } from '../src/node/dawn.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { Random } from './helpers.ts';
import { gpuTests } from './webgpu-setup.ts';

/** The fixtures' rule: max |a - t| / max |t|. */
function normalized(actual: ArrayLike<number>, truth: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < truth.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - truth[i]));
    scale = Math.max(scale, Math.abs(truth[i]));
  }
  return Number.isNaN(diff) ? Number.NaN : diff / Math.max(scale, 1e-300);
}

/** Every result of a training forward and backward on webgpu against the float64 reference, worst normalized error per tensor. */
function errorsOf(view: NormView, x: Float32Array, dy: Float32Array, weight: Float32Array | null, bias: Float32Array | null, eps: number): Record<string, number> {
  const n = x.length;
  const count = statsCount(view);
  const k = affineSize(view);
  const [y, dx] = [new Float32Array(n), new Float32Array(n)];
  const [mean, variance, rstd] = [new Float64Array(count), new Float64Array(count), new Float64Array(count)];
  const dweight = weight === null ? null : new Float32Array(k);
  const dbias = weight === null ? null : new Float32Array(k);
  backends.webgpu.forwardTrain(y, x, view, weight, bias, eps, mean, variance, rstd);
  backends.webgpu.backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, true);
  const ref = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps });
  const errors: Record<string, number> = {
    mean: normalized(mean, ref.mu),
    variance: normalized(variance, ref.var),
    rstd: normalized(
      rstd,
      Array.from(ref.var, (v) => 1 / Math.sqrt(v + eps)),
    ),
    y: normalized(y, ref.y),
    dx: normalized(dx, ref.dx),
  };
  if (dweight !== null && dbias !== null) {
    errors.dweight = normalized(dweight, ref.dgamma);
    errors.dbias = normalized(dbias, ref.dbeta);
  }
  return errors;
}

function worst(errors: Record<string, number>): [string, number] {
  return Object.entries(errors).reduce((a, b) => (b[1] > a[1] || Number.isNaN(b[1]) ? b : a));
}

describe('webgpu hardening and exactness repros', () => {
  const withGpu = gpuTests(createNodeWebGpu);

  withGpu('takes SharedArrayBuffer-backed inputs (Dawn crashed in writeBuffer): layer path and GPU tensors', async (g) => {
    const random = new Random(31);
    const shared = new Float32Array(new SharedArrayBuffer(384));
    shared.set(random.normals(96, 2, 3));
    const onGpu = new BatchNorm2d(3, { backend: 'webgpu' });
    const onJs = new BatchNorm2d(3, { backend: 'js' });
    const y = onGpu.forward({ data: shared, shape: [2, 3, 4, 4] });
    const truth = onJs.forward({ data: Float32Array.from(shared), shape: [2, 3, 4, 4] });
    assert.ok(normalized(y.data, truth.data) < 1e-6);
    const dy = new Float32Array(new SharedArrayBuffer(384));
    dy.set(random.normals(96));
    assert.ok(normalized(onGpu.backward({ data: dy, shape: [2, 3, 4, 4] }).data, onJs.backward({ data: Float32Array.from(dy), shape: [2, 3, 4, 4] }).data) < 1e-6);
    const values = new Float32Array(new SharedArrayBuffer(64)).map((_, i) => i - 7.5);
    const tensor = g.tensor(values);
    assert.deepEqual(await g.read(tensor), Float32Array.from(values));
    tensor.buffer.destroy();
  });

  withGpu('refuses 2^31 values with a NormkitError (was a DOMException), before sending them anywhere', (g) => {
    const n = 2 ** 31;
    const view = normView({ kind: 'batch' }, [2 ** 21, 1024], 'channels-first');
    // never written: the pages stay unallocated
    const x = new Float32Array(n);
    const isLength = (e: unknown) => e instanceof NormkitError && e.code === 'length' && /2147483648 values \(8589934592 bytes\) exceed this device's maxStorageBufferBindingSize/.test(e.message);
    assert.throws(() => {
      backends.webgpu.forwardTrain(new Float32Array(n), x, view, null, null, 1e-5, new Float64Array(1024), new Float64Array(1024), new Float64Array(1024));
    }, isLength);
    assert.throws(() => g.tensor(x), isLength);
    assert.throws(() => g.tensor(n), isLength);
  });

  withGpu('GroupNorm right at |x| ~ 1e18, 1e30, 1e34 and 1e-30 (was zeros at 1e18, 1e33 at 1e30): statistics scaled before squaring (beyond ~1e36, dx ~ 1/|x| reaches float32 subnormals, which WGSL lets a GPU flush)', () => {
    const random = new Random(37);
    // 2*32 = 64 values per group (float-float per value) and 2*320 = 640 (f32 per value)
    for (const shape of [
      [2, 4, 32],
      [2, 4, 320],
    ]) {
      for (const magnitude of [1e18, 1e30, 1e34, 1e-30]) {
        const layer = new GroupNorm(2, 4, { backend: 'webgpu' });
        const reference = new GroupNorm(2, 4, { backend: 'reference', dtype: 'float64' });
        const data = Float32Array.from(random.normals(8 * shape[2], 0, magnitude));
        const y = layer.forward({ data, shape });
        const truth = reference.forward({ data: Float64Array.from(data), shape });
        const error = normalized(y.data, truth.data);
        assert.ok(error < 1e-6, `[${shape.join(', ')}] |x| ~ ${magnitude}: y off by ${error}`);
        const dy = Float32Array.from(random.normals(data.length));
        const dx = layer.backward({ data: dy, shape });
        const dxTruth = reference.backward({ data: Float64Array.from(dy), shape });
        assert.ok(normalized(dx.data, dxTruth.data) < 1e-6, `[${shape.join(', ')}] |x| ~ ${magnitude}: dx off by ${normalized(dx.data, dxTruth.data)}`);
      }
    }
  });

  withGpu('BatchNorm1d(5) on [2, 5] with eps 1e-7: dx, which cancels to eps/var of its terms, within 1e-6 (was 1.07e4)', () => {
    const random = new Random(41);
    const eps = 1e-7;
    const layer = new BatchNorm1d(5, { backend: 'webgpu', eps });
    const x = Float32Array.from(random.normals(10));
    const dy = Float32Array.from(random.normals(10));
    layer.forward({ data: x, shape: [2, 5] });
    const dx = layer.backward({ data: dy, shape: [2, 5] }).data;
    // two values per channel: dx = +-w*rstd*delta*eps/(D^2 + eps), D = (x1 - x2)/2, delta = (dy1 - dy2)/2 (w = 1)
    const truth = new Float64Array(10);
    for (let c = 0; c < 5; c++) {
      const D = (x[c] - x[5 + c]) / 2;
      const delta = (dy[c] - dy[5 + c]) / 2;
      truth[c] = (delta * eps) / (D * D + eps) / Math.sqrt(D * D + eps);
      truth[5 + c] = -truth[c];
    }
    const error = normalized(dx, truth);
    assert.ok(error < 1e-6, `dx off by ${error}`);
  });

  withGpu('random cases: every tensor within 1e-6 of float64 (norm kinds, layouts, affine, eps 1e-7..1e-3, offsets to 1e4)', () => {
    const random = new Random(43);
    const reductions: Reduction[] = [{ kind: 'batch' }, { kind: 'instance' }, { kind: 'group', groups: 2 }, { kind: 'layer', normalizedRank: 1 }];
    const failures: string[] = [];
    for (let trial = 0; trial < 24; trial++) {
      const reduction = reductions[trial % reductions.length];
      const layout = random.int(0, 1) === 0 ? 'channels-first' : 'channels-last';
      const rank = random.int(2, 4);
      const shape = Array.from({ length: rank }, (_, d) => (d === (layout === 'channels-first' ? 1 : rank - 1) ? 2 * random.int(1, 3) : random.int(1, 4)));
      if (reduction.kind === 'batch' && shape.reduce((p, d) => p * d, 1) / shape[layout === 'channels-first' ? 1 : rank - 1] < 2) shape[0] = 2;
      const view = normView(reduction, shape, layout);
      if (view.span * view.inner < 2) continue;
      const n = shape.reduce((p, d) => p * d, 1);
      const offset = [0, 3, 1e4][random.int(0, 2)];
      const std = [1e-2, 1, 3][random.int(0, 2)];
      const eps = [1e-7, 1e-5, 1e-3][random.int(0, 2)];
      const x = Float32Array.from(random.normals(n, offset, std));
      const dy = Float32Array.from(random.normals(n));
      const k = affineSize(view);
      const affine = random.int(0, 1) === 1;
      const weight = affine ? Float32Array.from(random.normals(k, 1, 0.3)) : null;
      const bias = affine ? Float32Array.from(random.normals(k)) : null;
      const [tensor, error] = worst(errorsOf(view, x, dy, weight, bias, eps));
      if (!(error <= 1e-6)) failures.push(`${reduction.kind} ${layout} [${shape.join(', ')}] offset ${offset} std ${std} eps ${eps}: ${tensor} ${error}`);
    }
    assert.deepEqual(failures, []);
  });
});
