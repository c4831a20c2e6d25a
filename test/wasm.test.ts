// The wasm backend beyond the fixtures: large inputs on one thread and on the worker pool, every norm and
// layout and dtype against the js kernels; resident tensors; no leaks across many calls; a clean pool.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { Reduction } from '../src/core/layout.ts';
import { affineSize, normView, statsCount } from '../src/core/layout.ts';
import { backends } from '../src/kernels/index.ts';
import { freeWasmTensor, runWasmJobs, wasmMemory, wasmPool, wasmTensor, wasmThreads } from '../src/kernels/wasm/backend.ts';
import type { Job } from '../src/kernels/wasm/pool.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import type { DType, FloatArray } from '../src/tensor.ts';
import { allocate } from '../src/tensor.ts';
import { onTwoThreads, Random } from './helpers.ts';
import type { KernelCase } from './property-cases.ts';
import { checkCase } from './property-cases.ts';

const reductions: [Reduction, number[]][] = [
  [{ kind: 'batch' }, [4, 8, 40, 41]],
  [{ kind: 'instance' }, [3, 6, 33, 35]],
  [{ kind: 'group', groups: 4 }, [2, 8, 30, 33]],
  [{ kind: 'layer', normalizedRank: 1 }, [300, 257]],
  [{ kind: 'batch' }, [1000, 70]],
  // odd counts of statistics groups and of rows: the threads' shares differ (the split's remainder)
  [{ kind: 'batch' }, [3, 7, 33, 35]],
  [{ kind: 'layer', normalizedRank: 1 }, [301, 65]],
  [{ kind: 'batch' }, [1001, 70]],
  [{ kind: 'group', groups: 3 }, [3, 9, 41, 17]],
];

function relErr(a: FloatArray, b: FloatArray): number {
  let diff = 0;
  let scale = 1e-30;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/** Runs forward (train and with stats) and backward on wasm and js; returns the worst normalized difference. */
function compareWithJs(reduction: Reduction, shape: number[], layout: 'channels-first' | 'channels-last', dtype: DType, seed: number): number {
  const random = new Random(seed);
  const view = normView(reduction, shape, layout);
  const n = shape.reduce((p, d) => p * d, 1);
  const x = allocate(dtype, n);
  x.set(random.normals(n, 100, 0.01)); // a large offset: float32 lanes must not cancel
  const dy = allocate(dtype, n);
  dy.set(random.normals(n));
  const k = affineSize(view);
  const weight = allocate(dtype, k).map(() => 1 + 0.3 * random.normal());
  const bias = allocate(dtype, k).map(() => random.normal());
  const count = statsCount(view);
  const out = (name: 'js' | 'wasm') => {
    const kernels = backends[name];
    const [mean, variance, rstd] = [new Float64Array(count), new Float64Array(count), new Float64Array(count)];
    const y = allocate(dtype, n);
    kernels.forwardTrain(y, x, view, weight, bias, 1e-5, mean, variance, rstd);
    const dx = allocate(dtype, n);
    const [dweight, dbias] = [allocate(dtype, k), allocate(dtype, k)];
    kernels.backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, true);
    const yEval = allocate(dtype, n);
    kernels.forwardWithStats(yEval, x, view, weight, bias, mean, rstd);
    const dxEval = allocate(dtype, n);
    kernels.backward(dxEval, null, null, dy, x, view, weight, mean, rstd, false);
    return [y, dx, dweight, dbias, yEval, dxEval, mean, variance];
  };
  const js = out('js');
  const wasm = out('wasm');
  return Math.max(...js.map((a, i) => relErr(wasm[i], a)));
}

function sweep(label: string): void {
  for (const [reduction, shape] of reductions) {
    for (const layout of ['channels-first', 'channels-last'] as const) {
      for (const dtype of ['float32', 'float64'] as const) {
        it(`${label}: ${reduction.kind} ${layout} ${dtype} [${shape.join(',')}]`, () => {
          const error = compareWithJs(reduction, layout === 'channels-last' && shape.length === 4 ? [shape[0], shape[2], shape[3], shape[1]] : shape, layout, dtype, 7);
          // offset/std = 1e4 amplifies rounding by 1e4: float64 sums in another order differ near 1e-11
          assert.ok(error <= (dtype === 'float32' ? 1e-6 : 1e-10), `normalized difference ${error}`);
        });
      }
    }
  }
}

describe('wasm backend on one thread', () => {
  sweep('1 thread');
});

describe('wasm row mode (channels-last) with a shift far from the mean', () => {
  it('centres a second pass on the mean when the first rows are outliers', () => {
    // the first rows hold 1e4, the rest N(5, 0.01): moments around the first rows would cancel in float32
    const shape = [4, 10, 10, 8];
    const view = normView({ kind: 'batch' }, shape, 'channels-last');
    const n = 3200;
    const random = new Random(9);
    const x = new Float32Array(n).map((_, i) => (i < 16 * 8 ? 1e4 : 5 + 0.01 * random.normal()));
    const dy = new Float32Array(n).map(() => random.normal());
    const result = (name: 'js' | 'wasm') => {
      const [mean, variance, rstd] = [new Float64Array(8), new Float64Array(8), new Float64Array(8)];
      const y = new Float32Array(n);
      backends[name].forwardTrain(y, x, view, null, null, 1e-5, mean, variance, rstd);
      const dx = new Float32Array(n);
      backends[name].backward(dx, null, null, dy, x, view, null, mean, rstd, true);
      return [y, dx, variance];
    };
    const [js, wasm] = [result('js'), result('wasm')];
    for (let k = 0; k < 3; k++) assert.ok(relErr(wasm[k], js[k]) < 1e-6, `tensor ${k}: ${relErr(wasm[k], js[k])}`);
  });
});

describe('wasm row mode where float32 squares overflow or underflow (finite input)', () => {
  for (const std of [1e20, 1e-20]) {
    it(`channels-last and BatchNorm1d at std ${std}: the widened path, as js computes it`, () => {
      const random = new Random(11);
      for (const [shape, layout] of [
        [[4, 10, 10, 8], 'channels-last'],
        [[300, 8], 'channels-first'],
      ] as const) {
        const view = normView({ kind: 'batch' }, [...shape], layout);
        const n = shape.reduce((p, d) => p * d, 1);
        const x = Float32Array.from(random.normals(n, 0, std));
        const dy = Float32Array.from(random.normals(n));
        const result = (name: 'js' | 'wasm') => {
          const [mean, variance, rstd] = [new Float64Array(8), new Float64Array(8), new Float64Array(8)];
          const y = new Float32Array(n);
          backends[name].forwardTrain(y, x, view, null, null, 1e-5 * std * std, mean, variance, rstd);
          const dx = new Float32Array(n);
          backends[name].backward(dx, null, null, dy, x, view, null, mean, rstd, true);
          const yEval = new Float32Array(n);
          backends[name].forwardWithStats(yEval, x, view, null, null, mean, rstd);
          return [y, dx, yEval];
        };
        const [js, wasm] = [result('js'), result('wasm')];
        for (let k = 0; k < 3; k++) assert.ok(relErr(wasm[k], js[k]) < 1e-6, `${layout} tensor ${k}: ${relErr(wasm[k], js[k])}`);
      }
    });
  }
});

describe('wasm backend on the worker pool', () => {
  onTwoThreads(1 << 14);

  it('runs with 2 threads', () => {
    assert.equal(wasmThreads(), 2);
    assert.notEqual(wasmPool(), null);
  });

  sweep('2 threads');

  it('row mode in float64 keeps the mean as hi + lo across uneven shares: within 1e-12 of the exact oracle at mean 1e6, std 1e-3', () => {
    const base = { param: 0, dtype: 'float64', affine: true, eps: 1e-5, offset: -1e6, scale: 1e-3, seed: 11 } as const;
    const cases: KernelCase[] = [
      { ...base, kind: 'batch', shape: [1001, 70], layout: 'channels-first', train: true },
      { ...base, kind: 'instance', shape: [3, 101, 67, 5], layout: 'channels-last', train: true },
      { ...base, kind: 'batch', shape: [1001, 70], layout: 'channels-first', train: false },
    ];
    for (const c of cases) {
      const { ratios } = checkCase(backends.wasm, c, { output: 1e-12, stats: 1e-12, cancel: 1e-15 });
      for (const [tensor, ratio] of Object.entries(ratios)) assert.ok(ratio <= 1, `${c.kind} ${c.layout} train ${c.train} ${tensor}: ${ratio.toExponential(2)} x its tolerance`);
    }
  });

  it('runs every job of a call exactly once, whichever thread claims it, and stays usable after a job fails', () => {
    // each job adds its region's second half into its first (add_partials over 2 parts): 1 once, 2 if run twice
    const n = 16 * 1024;
    const regions = wasmTensor('float64', [2, 2, n]);
    const jobs = (count: number): Job[] => Array.from({ length: count }, (_, j): Job => ({ fn: 'add_partials', args: [regions.data.byteOffset + j * 16 * n, 2, 8 * n, n] }));
    const fresh = () => {
      for (let j = 0; j < 2; j++) regions.data.subarray(2 * j * n, (2 * j + 2) * n).fill(0, 0, n).fill(1, n);
    };
    const added = (j: number) => regions.data.subarray(2 * j * n, (2 * j + 1) * n);
    for (let round = 0; round < 200; round++) {
      fresh();
      runWasmJobs(jobs(2));
      for (let j = 0; j < 2; j++) assert.ok(added(j).every((v) => v === 1), `round ${round}, job ${j}: ${added(j)[0]}`);
    }
    assert.throws(() => {
      runWasmJobs(jobs(3));
    }, /^NormkitError: the wasm thread pool takes at most one job a thread, got 3 for 2 threads$/);
    // a job past the end of wasm memory (4 GiB less 256 bytes: far beyond what the tests grow it to) throws:
    // the caller's trap or the worker's report, whichever thread claimed it
    const outside: Job = { fn: 'add_partials', args: [2 ** 32 - 256, 2, 8, 1] };
    for (let round = 0; round < 4; round++) {
      assert.throws(() => {
        runWasmJobs(round % 2 === 0 ? [jobs(1)[0], outside] : [outside, jobs(1)[0]]);
      }, /out of bounds|a wasm worker failed while running a kernel/);
    }
    fresh();
    runWasmJobs(jobs(2));
    for (let j = 0; j < 2; j++) assert.ok(added(j).every((v) => v === 1));
    freeWasmTensor(regions);
  });

  it('reads and writes tensors that live in wasm memory without copies, and frees them', () => {
    const shape = [8, 16, 32, 32];
    const x = wasmTensor('float32', shape);
    const y = wasmTensor('float32', shape);
    x.data.set(new Random(3).normals(x.data.length, 2, 3));
    const view = normView({ kind: 'batch' }, shape, 'channels-first');
    const stats = () => [new Float64Array(16), new Float64Array(16), new Float64Array(16)] as const;
    const [m1, v1, r1] = stats();
    backends.wasm.forwardTrain(y.data, x.data, view, null, null, 1e-5, m1, v1, r1);
    const plain = new Float32Array(x.data.length);
    const [m2, v2, r2] = stats();
    backends.js.forwardTrain(plain, Float32Array.from(x.data), view, null, null, 1e-5, m2, v2, r2);
    assert.ok(relErr(y.data, plain) < 1e-6);
    freeWasmTensor(x);
    freeWasmTensor(y);
    assert.throws(() => {
      freeWasmTensor({ data: new Float32Array(4), shape: [4] });
    }, /does not live in wasm memory/);
  });

  it('holds no memory across thousands of calls', () => {
    const bn = new BatchNorm2d(4, { backend: 'wasm' });
    const random = new Random(5);
    const small = { data: Float32Array.from(random.normals(2 * 4 * 3 * 3)), shape: [2, 4, 3, 3] };
    const large = { data: Float32Array.from(random.normals(8 * 4 * 64 * 64)), shape: [8, 4, 64, 64] };
    const step = (x: typeof small) => {
      bn.forward(x).dispose();
      bn.backward(x).dispose();
    };
    // the first call of each shape plans it (scratch kept for the next call)
    step(small);
    step(large);
    const before = wasmMemory();
    for (let i = 0; i < 3000; i++) step(i % 100 === 0 ? large : small);
    // every staging block and every disposed output was returned
    assert.deepEqual(wasmMemory(), before);
  });
});

describe('layers writing into given outputs', () => {
  it('fill a given out (a plain array or a wasmTensor) instead of allocating, with the same numbers', () => {
    const random = new Random(12);
    const shape = [4, 3, 8, 8];
    const x = { data: Float32Array.from(random.normals(768, 2, 3)), shape };
    const dy = { data: Float32Array.from(random.normals(768)), shape };
    const reference = new BatchNorm2d(3, { backend: 'js' });
    const y0 = reference.forward(x);
    const dx0 = reference.backward(dy);
    const plain = new BatchNorm2d(3, { backend: 'js' });
    const out = { data: new Float32Array(768), shape };
    assert.equal(plain.forward(x, { out }), out);
    assert.deepEqual(Array.from(out.data), Array.from(y0.data));
    const wasm = new BatchNorm2d(3, { backend: 'wasm' });
    const [rx, ry, rdy, rdx] = [wasmTensor('float32', shape), wasmTensor('float32', shape), wasmTensor('float32', shape), wasmTensor('float32', shape)];
    rx.data.set(x.data);
    rdy.data.set(dy.data);
    wasm.forward(rx, { out: ry });
    wasm.backward(rdy, { out: rdx });
    assert.ok(relErr(ry.data, y0.data) < 1e-6 && relErr(rdx.data, dx0.data) < 1e-6);
    for (const t of [rx, ry, rdy, rdx]) freeWasmTensor(t);
  });

  it('reject an out of the wrong shape or dtype, or the input itself, and change nothing', () => {
    const bn = new BatchNorm2d(2);
    const x = { data: new Float32Array(16).map((_, i) => i % 5), shape: [2, 2, 2, 2] };
    bn.forward(x);
    const before = JSON.stringify([Array.from(bn.runningMean!), Array.from(bn.runningVar!), bn.numBatchesTracked]);
    assert.throws(() => bn.forward(x, { out: { data: new Float32Array(16), shape: [2, 2, 4] } }), /expected out of shape \[2, 2, 2, 2\], got \[2, 2, 4\]/);
    assert.throws(() => bn.forward(x, { out: { data: new Float64Array(16), shape: [2, 2, 2, 2] } }), /expected out of dtype float32, got float64/);
    assert.throws(() => bn.forward(x, { out: x }), /out must not share memory with the input \(the same array\)/);
    assert.throws(() => bn.backward(x, { out: x }), /out must not share memory with grad_output/);
    assert.equal(JSON.stringify([Array.from(bn.runningMean!), Array.from(bn.runningVar!), bn.numBatchesTracked]), before);
  });
});

describe('process exit', () => {
  it('is not held up by a pool that was never stopped', () => {
    const entry = fileURLToPath(new URL('../dist/node/index.js', import.meta.url));
    const script = `import { startWasmThreads } from ${JSON.stringify(entry)}; console.log(await startWasmThreads(2));`;
    const started = performance.now();
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20000 });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), '2');
    assert.ok(performance.now() - started < 15000);
  });
});
