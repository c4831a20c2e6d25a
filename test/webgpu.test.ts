// The webgpu backend beyond the shared suites: GPU-resident tensors across steps, float32 accuracy
// guards (hi/lo mean, re-centring), default limits, layers on it, and its errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import type { NormView } from '../src/core/layout.ts';
import { affineSize, normView, statsCount } from '../src/core/layout.ts';
import { NormkitError } from '../src/errors.ts';
import { backendAvailable, backends } from '../src/kernels/index.ts';
import { WebGpuNorm, requestDevice } from '../src/kernels/webgpu/engine.ts';
import { lanesOf } from '../src/kernels/webgpu/dispatch.ts';
import { webgpuTypedKernels } from '../src/kernels/webgpu/typed-kernels.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import { dawnGpu } from '../src/node/dawn.ts';
import { stopWebGpu } from '../src/node/webgpu-threads.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { Random, maxAbsDiff } from './helpers.ts';
import { gpuTests } from './webgpu-setup.ts';

const scale = (a: ArrayLike<number>) => Math.max(1e-12, ...Array.from(a, Math.abs));
const relative = (a: ArrayLike<number>, truth: ArrayLike<number>) => maxAbsDiff(a, truth) / scale(truth);

function inputs(random: Random, view: NormView, mean = 0, std = 1) {
  const n = view.outer * view.span * view.groups * view.inner;
  const k = affineSize(view);
  return {
    x: Float32Array.from(random.normals(n, mean, std)),
    dy: Float32Array.from(random.normals(n)),
    weight: Float32Array.from(random.normals(k, 1, 0.3)),
    bias: Float32Array.from(random.normals(k)),
  };
}

describe('webgpu backend', () => {
  const available = { before: true };
  // registered before gpuTests' hook, so it sees the backend before webgpu starts
  before(() => {
    available.before = backendAvailable('webgpu');
  });
  const withGpu = gpuTests(async () => WebGpuNorm.create({ gpu: await dawnGpu() }));

  withGpu('is unavailable to layers until started, and names the adapter once started', (_engine, adapter) => {
    assert.equal(available.before, false);
    assert.ok(backendAvailable('webgpu'));
    assert.ok(adapter.length > 0);
  });

  withGpu('keeps tensors and statistics on the GPU across forward, backward and steps (multi-chunk groups)', async (g) => {
    const random = new Random(3);
    // 4*48*48 = 9216 values per channel: three chunks of 4096 per statistics group
    const view = normView({ kind: 'batch' }, [4, 3, 48, 48], 'channels-first');
    const { x, dy, weight, bias } = inputs(random, view, 2, 0.5);
    const [xs, dys, ws, bs] = [x, dy, weight, bias].map((a) => g.tensor(a));
    const n = x.length;
    const k = affineSize(view);
    const ys = g.tensor(n);
    const dxs = g.tensor(n);
    const dws = g.tensor(k);
    const dbs = g.tensor(k);
    const stats = g.stats(statsCount(view));
    for (let step = 0; step < 2; step++) {
      g.forwardTrain(ys, xs, view, ws, bs, 1e-5, stats);
      g.backward(dxs, dws, dbs, dys, xs, view, ws, stats, true);
    }
    await g.finish();
    const ref = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps: 1e-5 });
    const got = await g.readStats(stats);
    assert.ok(relative(got.mean, ref.mu) < 1e-6, `mean ${relative(got.mean, ref.mu)}`);
    assert.ok(relative(got.variance, ref.var) < 1e-5);
    assert.ok(relative(await g.read(ys), ref.y) < 2e-6);
    assert.ok(relative(await g.read(dxs), ref.dx) < 2e-6);
    assert.ok(relative(await g.read(dws), ref.dgamma) < 2e-6);
    assert.ok(relative(await g.read(dbs), ref.dbeta) < 2e-6);
    for (const t of [xs, dys, ws, bs, ys, dxs, dws, dbs]) t.buffer.destroy();
    stats.buffer.destroy();
  });

  withGpu('reads vec4 loads where runs of 4 share statistics and affine entries, and single values elsewhere', () => {
    const random = new Random(17);
    const cases: [Parameters<typeof normView>[0], number[], 'channels-first' | 'channels-last', 1 | 4][] = [
      [{ kind: 'group', groups: 2 }, [3, 4, 4, 4], 'channels-first', 4],
      [{ kind: 'instance' }, [3, 4, 4, 2], 'channels-first', 4],
      [{ kind: 'group', groups: 2 }, [3, 3, 3, 8], 'channels-last', 1],
      [{ kind: 'batch' }, [5, 3, 3, 3], 'channels-first', 1],
      // few targets, split into many small chunks (a row per lane) so a GPU has work
      [{ kind: 'batch' }, [256, 64], 'channels-first', 1],
    ];
    for (const [reduction, shape, layout, lanes] of cases) {
      const view = normView(reduction, shape, layout);
      assert.equal(lanesOf(view), lanes);
      const { x, dy, weight, bias } = inputs(random, view, 1, 2);
      const count = statsCount(view);
      const [y, dx, dweight, dbias] = [new Float32Array(x.length), new Float32Array(x.length), new Float32Array(weight.length), new Float32Array(weight.length)];
      const [mean, variance, rstd] = [new Float64Array(count), new Float64Array(count), new Float64Array(count)];
      backends.webgpu.forwardTrain(y, x, view, weight, bias, 1e-5, mean, variance, rstd);
      backends.webgpu.backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, true);
      const ref = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps: 1e-5 });
      const what = `${reduction.kind} ${layout}`;
      assert.ok(relative(y, ref.y) < 2e-6, `${what} y`);
      assert.ok(relative(dx, ref.dx) < 2e-6, `${what} dx`);
      assert.ok(relative(dweight, ref.dgamma) < 2e-6, `${what} dweight`);
      assert.ok(relative(dbias, ref.dbeta) < 2e-6, `${what} dbias`);
    }
  });

  withGpu('keeps the mean beyond float32 as hi + lo: offset 1e3, std 1e-2 (bn2d_large_offset)', () => {
    const random = new Random(5);
    const view = normView({ kind: 'batch' }, [8, 4, 16, 16], 'channels-first');
    const { x, dy, weight, bias } = inputs(random, view, 1000, 0.01);
    const kernels = backends.webgpu;
    const n = x.length;
    const count = statsCount(view);
    const [y, dx] = [new Float32Array(n), new Float32Array(n)];
    const [mean, variance, rstd] = [new Float64Array(count), new Float64Array(count), new Float64Array(count)];
    kernels.forwardTrain(y, x, view, weight, bias, 1e-5, mean, variance, rstd);
    kernels.backward(dx, null, null, dy, x, view, weight, mean, rstd, true);
    const ref = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps: 1e-5 });
    // the mean's float32 rounding alone (6e-5 at 1e3) would be 6e-3 of a standard deviation
    assert.ok(maxAbsDiff(mean, ref.mu) < 1e-7, `mean off by ${maxAbsDiff(mean, ref.mu)}`);
    assert.ok(relative(y, ref.y) < 1e-5, `y ${relative(y, ref.y)}`);
    assert.ok(relative(dx, ref.dx) < 1e-5, `dx ${relative(dx, ref.dx)}`);
  });

  withGpu('re-centres a group whose first value lies far from its mean (no E[d^2] - E[d]^2 cancellation)', () => {
    const random = new Random(7);
    const view = normView({ kind: 'batch' }, [64, 2], 'channels-last');
    const x = Float32Array.from(random.normals(128, 5, 0.01));
    x[0] = 1e4; // channel 0's shift: 1e4 from a spread of 1.2e3 once it is in
    x[1] = -3e3;
    const count = statsCount(view);
    const [mean, variance, rstd] = [new Float64Array(count), new Float64Array(count), new Float64Array(count)];
    const y = new Float32Array(x.length);
    backends.webgpu.forwardTrain(y, x, view, null, null, 1e-5, mean, variance, rstd);
    const ref = referenceNorm({ x, view, gamma: null, beta: null, eps: 1e-5 });
    assert.ok(relative(variance, ref.var) < 1e-6, `variance ${relative(variance, ref.var)}`);
    assert.ok(relative(y, ref.y) < 1e-6, `y ${relative(y, ref.y)}`);
  });

  withGpu('float-float per value up to exactUpTo values per group (default 256), f32 beyond: a dx that cancels shows the difference', async (g) => {
    const random = new Random(29);
    // 2*16*16 = 512 values per channel, above the default; dy = 0.5 + 2x (in f32): dx cancels to ~1e-7 of its terms
    const view = normView({ kind: 'batch' }, [2, 3, 16, 16], 'channels-first');
    const x = Float32Array.from(random.normals(1536, 3, 2));
    const dy = x.map((v) => 0.5 + 2 * v);
    const ref = referenceNorm({ x, dy, view, gamma: null, beta: null, eps: 1e-5 });
    const exact = new WebGpuNorm(g.device, { exactUpTo: Infinity });
    assert.equal(g.exactUpTo, 256);
    const dxError = async (engine: WebGpuNorm) => {
      const kernels = webgpuTypedKernels(engine);
      const [y, dx] = [new Float32Array(1536), new Float32Array(1536)];
      const [mean, variance, rstd] = [new Float64Array(3), new Float64Array(3), new Float64Array(3)];
      await kernels.forwardTrain(y, x, view, null, null, 1e-5, mean, variance, rstd);
      await kernels.backward(dx, null, null, dy, x, view, null, mean, rstd, true);
      assert.ok(relative(y, ref.y) < 2e-7, `y ${relative(y, ref.y)}`);
      return relative(dx, ref.dx);
    };
    const exactError = await dxError(exact);
    const f32Error = await dxError(g);
    assert.ok(exactError < 1e-6, `float-float dx ${exactError}`);
    assert.ok(f32Error > 1e-5, `f32 dx ${f32Error}: the case no longer tells the paths apart`);
    exact.destroy();
    assert.throws(() => new WebGpuNorm(g.device, { exactUpTo: Number.NaN }), /exactUpTo must be a number >= 0, got NaN/);
  });

  withGpu('runs on a device with the default limits, and refuses a tensor beyond its storage binding size', async () => {
    const adapter = await (await dawnGpu()).requestAdapter();
    assert.ok(adapter !== null);
    const small = new WebGpuNorm(await adapter.requestDevice());
    const limit = small.device.limits.maxStorageBufferBindingSize;
    assert.throws(() => small.tensor(limit / 4 + 1), (e: unknown) => e instanceof NormkitError && e.code === 'length' && /maxStorageBufferBindingSize/.test(e.message));
    const random = new Random(9);
    const view = normView({ kind: 'layer', normalizedRank: 1 }, [40, 300], 'channels-first');
    const { x, dy, weight, bias } = inputs(random, view);
    const ys = small.tensor(x.length);
    const dxs = small.tensor(x.length);
    const dws = small.tensor(300);
    const stats = small.stats(40);
    const [xs, dys, ws, bs] = [x, dy, weight, bias].map((a) => small.tensor(a));
    small.forwardTrain(ys, xs, view, ws, bs, 1e-5, stats);
    small.backward(dxs, dws, null, dys, xs, view, ws, stats, true);
    const ref = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps: 1e-5 });
    assert.ok(relative(await small.read(ys), ref.y) < 2e-6);
    assert.ok(relative(await small.read(dxs), ref.dx) < 2e-6);
    assert.ok(relative(await small.read(dws), ref.dgamma) < 2e-6);
    small.device.destroy();
  });

  withGpu('rejects mismatched lengths, aliased outputs and a lost device with clear errors', async () => {
    const own = new WebGpuNorm(await requestDevice(await dawnGpu()));
    const view = normView({ kind: 'batch' }, [2, 3, 4], 'channels-first');
    const x = own.tensor(24);
    const stats = own.stats(3);
    assert.throws(() => {
      own.forwardTrain(own.tensor(23), x, view, null, null, 1e-5, stats);
    }, /expected tensors of 24 values for the view, got 23/);
    assert.throws(() => {
      own.forwardTrain(x, x, view, null, null, 1e-5, stats);
    }, /outputs and inputs must be distinct buffers/);
    assert.throws(() => {
      own.forwardTrain(own.tensor(24), x, view, own.tensor(2), null, 1e-5, stats);
    }, /expected affine tensors of 3 values, got 2/);
    const foreign = own.device.createBuffer({ size: 96, usage: 0x8 }); // COPY_DST only
    assert.throws(() => {
      own.forwardTrain(own.tensor(24), { buffer: foreign, length: 24 }, view, null, null, 1e-5, stats);
    }, /needs a GPUBuffer with STORAGE usage/);
    assert.throws(() => {
      own.forwardTrain(own.tensor(24), { buffer: own.tensor(4).buffer, length: 24 }, view, null, null, 1e-5, stats);
    }, /cannot hold 24 float32 values/);
    own.device.destroy();
    await own.device.lost;
    assert.throws(() => own.tensor(4), (e: unknown) => e instanceof NormkitError && e.code === 'backend' && /device was lost/.test(e.message));
  });

  withGpu('typed-array kernels with promises: overlapping calls each get their own results, float64 is refused', async (g) => {
    const kernels = webgpuTypedKernels(g);
    const random = new Random(19);
    const views = [normView({ kind: 'batch' }, [6, 3, 5], 'channels-first'), normView({ kind: 'layer', normalizedRank: 1 }, [7, 12], 'channels-first')];
    const runs = views.flatMap((view) => [0, 1].map(() => ({ view, ...inputs(random, view, 3, 2) })));
    const results = await Promise.all(
      runs.map(async ({ view, x, dy, weight, bias }) => {
        const count = statsCount(view);
        const [y, dx] = [new Float32Array(x.length), new Float32Array(x.length)];
        const [mean, variance, rstd] = [new Float64Array(count), new Float64Array(count), new Float64Array(count)];
        await kernels.forwardTrain(y, x, view, weight, bias, 1e-5, mean, variance, rstd);
        await kernels.backward(dx, null, null, dy, x, view, weight, mean, rstd, true);
        return { y, dx };
      }),
    );
    results.forEach(({ y, dx }, i) => {
      const { view, x, dy, weight, bias } = runs[i];
      const ref = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps: 1e-5 });
      assert.ok(relative(y, ref.y) < 2e-6 && relative(dx, ref.dx) < 2e-6, `call ${i}`);
    });
    await assert.rejects(kernels.forwardWithStats(new Float32Array(4), new Float64Array(4), views[0], null, null, new Float64Array(3), new Float64Array(3)), /webgpu computes in float32: x is a Float64Array/);
  });

  it('says how to get an adapter where there is none', async () => {
    await assert.rejects(
      requestDevice({ requestAdapter: () => Promise.resolve(null) }),
      (e: unknown) => e instanceof NormkitError && e.code === 'backend' && /no GPU adapter here .*VK_ICD_FILENAMES=\/usr\/lib\/chromium\/vk_swiftshader_icd\.json/.test(e.message),
    );
  });

  withGpu('serves layers: BatchNorm2d and LayerNorm on webgpu match js, float64 is refused', () => {
    const random = new Random(13);
    for (const make of [() => new BatchNorm2d(3), () => new LayerNorm([5])]) {
      const onGpu = make();
      const onJs = make();
      onGpu.backend = 'webgpu';
      onJs.backend = 'js';
      const shape = onGpu instanceof BatchNorm2d ? [4, 3, 5, 5] : [4, 3, 5];
      const n = shape.reduce((p, d) => p * d, 1);
      const x = { data: Float32Array.from(random.normals(n, 1, 2)), shape };
      const dy = { data: Float32Array.from(random.normals(n)), shape };
      const yGpu = onGpu.forward(x);
      const yJs = onJs.forward(x);
      assert.ok(relative(yGpu.data, yJs.data) < 2e-6);
      assert.ok(relative(onGpu.backward(dy).data, onJs.backward(dy).data) < 2e-6);
      assert.ok(relative(onGpu.weight!.grad, onJs.weight!.grad) < 2e-6);
      assert.deepEqual(Object.keys(onGpu.stateDict()), Object.keys(onJs.stateDict()));
      if (onGpu.runningMean !== null && onJs.runningMean !== null) assert.ok(relative(onGpu.runningMean, onJs.runningMean) < 1e-6);
    }
    assert.throws(() => new BatchNorm2d(3, { backend: 'webgpu', dtype: 'float64' }), /backend 'webgpu' computes in float32 only/);
    const layer = new BatchNorm2d(3, { dtype: 'float64' });
    assert.throws(() => {
      layer.backend = 'webgpu';
    }, /computes in float32 only/);
    assert.throws(() => {
      backends.webgpu.forwardWithStats(new Float64Array(4), new Float64Array(4), normView({ kind: 'batch' }, [2, 2], 'channels-first'), null, null, new Float64Array(2), new Float64Array(2));
    }, /webgpu computes in float32/);
  });

  withGpu('starts silently where the process has no XDG_RUNTIME_DIR (Dawn printed two errors), in a private directory removed at exit', () => {
    const threads = new URL('../src/node/webgpu-threads.ts', import.meta.url).href;
    const dawn = new URL('../src/node/dawn.ts', import.meta.url).href;
    const script = `const { startWebGpu, stopWebGpu } = await import(${JSON.stringify(threads)});
const { createNodeWebGpu } = await import(${JSON.stringify(dawn)});
await startWebGpu();
(await createNodeWebGpu()).destroy();
await stopWebGpu();
console.log(process.env.XDG_RUNTIME_DIR);
process.exit(0);`;
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'XDG_RUNTIME_DIR'));
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--require', './scripts/tsx-workers.cjs', '--input-type=module', '-e', script], { env, encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stderr, '');
    const dir = child.stdout.trim();
    assert.match(dir, /normkit-runtime-/);
    assert.equal(existsSync(dir), false);
  });

  withGpu('stops: layers then fail with the reason until it is started again', async () => {
    const layer = new BatchNorm2d(2, { backend: 'webgpu' });
    await stopWebGpu();
    assert.equal(backendAvailable('webgpu'), false);
    assert.throws(() => layer.forward({ data: new Float32Array(8), shape: [2, 2, 2, 1] }), /webgpu backend is not started/);
  });
});
