// Property tests (fast-check: shrinking, and a seed printed on failure that `seed`/`path` replay): every
// backend against the exact oracle on random norms, ranks 2-5, layouts, dtypes, affine or not, training
// or eval, eps, and offsets and scales up to ill-conditioned (mean 1e4, std 1e-2) and near overflow; and
// the layers' running statistics against their closed form. `node --import tsx test/property.test.ts
// --long` (or NORMKIT_LONG=1 with node --test) runs 20 times as many cases.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { reduceSize } from '../src/core/layout.ts';
import { backends } from '../src/kernels/index.ts';
import type { BackendName } from '../src/kernels/contract.ts';
import { BatchNorm1d, BatchNorm2d, BatchNorm3d } from '../src/nn/batchnorm.ts';
import { InstanceNorm1d, InstanceNorm2d, InstanceNorm3d } from '../src/nn/instancenorm.ts';
import type { Normalization } from '../src/nn/normalization.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import type { DType } from '../src/tensor.ts';
import { allocate } from '../src/tensor.ts';
import { NormkitError } from '../src/errors.ts';
import { GroupNorm } from '../src/nn/groupnorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import { Random, snapshot } from './helpers.ts';
import type { KernelCase, Tolerance } from './property-cases.ts';
import { checkCase, kernelCase, longMode, normalizedError, runsOf } from './property-cases.ts';
import type { WebGpuSetup } from './webgpu-setup.ts';
import { useWebGpu } from './webgpu-setup.ts';

if (longMode) console.log('# property tests: --long, 20x the cases');

/**
 * float64: 1e-12 of the exact result; dx also within 1e-15 of its first term (with two values per group
 * dx is ~eps/var of its terms, and no float64 kernel keeps more). float32 (README, Accuracy): outputs within
 * 2e-7 (wasm's float32 lanes round up to three times; js and the reference, rounding once, within 1e-7),
 * statistics within 1e-7, and dx, dweight, dbias within float32 rounding (6e-8) of the terms they sum or cancel.
 */
const tolerances: Record<DType, Tolerance> = {
  float64: { output: 1e-12, stats: 1e-12, cancel: 1e-15 },
  float32: { output: 2e-7, stats: 1e-7, cancel: 6e-8 },
};
const webgpuTolerance: Tolerance = { output: 1e-6, stats: 1e-6, cancel: 1e-6 };
/** js and the reference compute in float64 and round each float32 output once: within 1e-7. */
const roundedOnce: Record<DType, Tolerance> = { ...tolerances, float32: { ...tolerances.float32, output: 1e-7 } };

/** Group mode in the wasm backend: runs of 8 values or more (GROUP_MODE_MIN_RUN); row mode otherwise. */
const wasmGroupMode = (_: KernelCase, inner: number): boolean => inner >= 8;

function property(name: BackendName, dtypes: readonly DType[], tol: (dtype: DType) => Tolerance, runs: number, keep: (c: KernelCase, inner: number) => boolean = () => true): void {
  fc.assert(
    fc.property(kernelCase(dtypes), (c) => {
      const { view, ratios } = checkCase(backends[name], c, tol(c.dtype));
      if (!keep(c, view.inner)) return true;
      for (const [tensor, ratio] of Object.entries(ratios)) assert.ok(ratio <= 1, `${name} ${c.dtype} ${tensor}: ${ratio.toExponential(2)} x its tolerance`);
      return true;
    }),
    { numRuns: runsOf(runs), includeErrorInReport: true },
  );
}

describe('property: kernels against the exact oracle', () => {
  it('reference backend (float64 and float32)', () => {
    property('reference', ['float64', 'float32'], (d) => roundedOnce[d], 150);
  });
  it('js (float64 and float32)', () => {
    property('js', ['float64', 'float32'], (d) => roundedOnce[d], 400);
  });
  it('wasm group mode (runs of 8 values or more; float32 lanes from 64 values)', () => {
    property('wasm', ['float64', 'float32'], (d) => tolerances[d], 400, wasmGroupMode);
  });
  it('wasm row mode (channels-last, short runs), float32', () => {
    property('wasm', ['float32'], (d) => tolerances[d], 300, (c, inner) => !wasmGroupMode(c, inner));
  });
  it('wasm row mode (channels-last, short runs), float64', () => {
    property('wasm', ['float64'], (d) => tolerances[d], 300, (c, inner) => !wasmGroupMode(c, inner));
  });
  describe('webgpu (float32, SwiftShader where no GPU)', () => {
    let gpu: WebGpuSetup = { ok: true, adapter: '' };
    before(async () => {
      gpu = await useWebGpu();
    });
    it('within 1e-6', (t) => {
      if (!gpu.ok) {
        t.skip(gpu.reason);
        return;
      }
      // up to |x| ~ 1e34: beyond it webgpu leaves 1e-6 (LayerNorm at offset -3e36, scale 1e35), where WGSL may flush float32 subnormals (SwiftShader does)
      property('webgpu', ['float32'], () => webgpuTolerance, 150, (c) => Math.abs(c.offset) + 8 * c.scale <= 1e34);
    });
  });
});

type LayerKind = 'batch' | 'instance';
const layers: Record<LayerKind, readonly ((c: number, o: object) => Normalization)[]> = {
  batch: [(c, o) => new BatchNorm1d(c, o), (c, o) => new BatchNorm2d(c, o), (c, o) => new BatchNorm3d(c, o)],
  instance: [(c, o) => new InstanceNorm1d(c, o), (c, o) => new InstanceNorm2d(c, o), (c, o) => new InstanceNorm3d(c, o)],
};

describe('property: running statistics against their closed form', () => {
  // running = (1 - f)*running + f*batch, f = momentum or 1/numBatchesTracked; running_var takes var*M/(M - 1)
  const arbitrary = fc.record({
    kind: fc.constantFrom<LayerKind>('batch', 'instance'),
    rank: fc.integer({ min: 3, max: 5 }),
    channels: fc.integer({ min: 1, max: 4 }),
    momentum: fc.constantFrom(0.1, 0.5, 1, 0.01, null),
    dtype: fc.constantFrom<DType>('float64', 'float32'),
    backend: fc.constantFrom<BackendName>('js', 'wasm', 'reference'),
    steps: fc.integer({ min: 1, max: 4 }),
    layout: fc.constantFrom('channels-first' as const, 'channels-last' as const),
    offset: fc.constantFrom(0, 1e4, -3),
    seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  });

  it('matches the closed form after every training step, and eval normalizes with it', () => {
    fc.assert(
      fc.property(arbitrary, (c) => {
        const random = new Random(c.seed);
        const make = layers[c.kind][c.rank - 3];
        // InstanceNorm has no cumulative average (PyTorch: momentum must be a number there)
        const momentum = c.kind === 'instance' ? c.momentum ?? 0.1 : c.momentum;
        const layer = make(c.channels, { momentum, dtype: c.dtype, backend: c.backend, trackRunningStats: true, affine: true, layout: c.layout });
        const spatial = Array.from({ length: c.rank - 2 }, () => random.int(1, 3));
        const shape = c.layout === 'channels-first' ? [2, c.channels, ...spatial] : [2, ...spatial, c.channels];
        const view = layer.viewOf(shape);
        const m = reduceSize(view);
        const expectedMean = new Float64Array(c.channels);
        const expectedVar = new Float64Array(c.channels).fill(1);
        const tol = c.dtype === 'float64' ? 1e-12 : 2e-7;
        const n = shape.reduce((p, d) => p * d, 1);
        const x = allocate(c.dtype, n);
        for (let step = 1; step <= c.steps; step++) {
          x.set(random.normals(n, c.offset, 1 + step));
          if (m < 2) return true; // a single value per channel throws when training (tested in nn.test.ts)
          layer.train().forward({ data: x, shape });
          const exact = referenceNorm({ x, view, eps: layer.eps });
          const f = momentum ?? 1 / step;
          const blocks = view.outer;
          for (let g = 0; g < c.channels; g++) {
            let mu = 0;
            let v = 0;
            for (let a = 0; a < blocks; a++) {
              mu += exact.mu[a * view.groups + g] / blocks;
              v += exact.var[a * view.groups + g] / blocks;
            }
            expectedMean[g] = (1 - f) * expectedMean[g] + f * mu;
            expectedVar[g] = (1 - f) * expectedVar[g] + f * v * (m / (m - 1));
          }
          // the mean against the data's spread too: a running mean near 0 has no digits of its own
          const spread = Math.sqrt(Math.max(...expectedVar));
          const meanError = Math.max(...Array.from(expectedMean, (e, g) => Math.abs(layer.runningMean![g] - e)));
          assert.ok(meanError <= tol * (Math.max(...Array.from(expectedMean, Math.abs)) + spread), `running_mean at step ${step}: ${meanError}`);
          assert.ok(normalizedError(layer.runningVar!, expectedVar) <= tol, `running_var at step ${step}`);
          assert.equal(layer.numBatchesTracked, c.kind === 'batch' ? step : 0);
        }
        // eval uses the running statistics
        const y = layer.eval().forward({ data: x, shape });
        const evalView = layer.viewOf(shape);
        const perBlock = (values: ArrayLike<number>) => Array.from({ length: evalView.outer * evalView.groups }, (_, q) => values[q % evalView.groups]);
        const ref = referenceNorm({ x, view: evalView, gamma: layer.weight!.data, beta: layer.bias!.data, eps: layer.eps, stats: { mu: perBlock(layer.runningMean!), var: perBlock(layer.runningVar!) } });
        assert.ok(normalizedError(y.data, ref.y) <= (c.dtype === 'float64' ? 1e-12 : 2e-7), 'eval output');
        return true;
      }),
      { numRuns: runsOf(150), includeErrorInReport: true },
    );
  });
});

describe('property: loadStateDict is atomic', () => {
  // a state dict with new values for every key and one bad entry: it throws, and nothing changed
  const makers: readonly ((c: number) => Normalization)[] = [
    (c) => new BatchNorm1d(c, { nonFinite: 'throw' }),
    (c) => new BatchNorm2d(c, { nonFinite: 'throw', dtype: 'float64' }),
    (c) => new BatchNorm3d(c, { nonFinite: 'throw', momentum: null }),
    (c) => new InstanceNorm2d(c, { nonFinite: 'throw', affine: true, trackRunningStats: true }),
    (c) => new GroupNorm(1, c, { nonFinite: 'throw' }),
    (c) => new LayerNorm([c, 2], { nonFinite: 'throw' }),
  ];
  const corruptions = ['length', 'NaN', 'negative variance', 'not a number', 'bad count'] as const;

  it('throws a state-dict NormkitError and changes nothing, whichever key is bad', () => {
    fc.assert(
      fc.property(fc.nat({ max: makers.length - 1 }), fc.integer({ min: 1, max: 5 }), fc.nat(), fc.constantFrom(...corruptions), fc.integer({ min: 1, max: 1000 }), (which, channels, keyPick, corruption, seed) => {
        const random = new Random(seed);
        const layer = makers[which](channels);
        const fresh = layer.stateDict();
        const keys = Object.keys(fresh);
        if (keys.length === 0) return true;
        const state: Record<string, number[] | number> = {};
        for (const key of keys) {
          const value = fresh[key];
          state[key] = typeof value === 'number' ? value + 3 : Array.from(value, () => 0.5 + Math.abs(random.normal()));
        }
        const before = snapshot(layer);
        const bad = keys[keyPick % keys.length];
        const value = state[bad];
        if (bad === 'num_batches_tracked' || typeof value === 'number') state[bad] = corruption === 'bad count' ? -1 : 2.5;
        else if (corruption === 'length') state[bad] = [...value, 1];
        else if (corruption === 'NaN') state[bad] = value.map((v, i) => (i === value.length - 1 ? Number.NaN : v));
        else if (corruption === 'negative variance' && bad === 'running_var') state[bad] = value.map((v, i) => (i === 0 ? -v : v));
        else state[bad] = value.map((v, i) => (i === 0 ? Number.POSITIVE_INFINITY : v));
        assert.throws(
          () => {
            layer.loadStateDict(state);
          },
          (error: unknown) => error instanceof NormkitError && error.code === 'state-dict',
          `${layer.name}: bad ${bad} (${corruption})`,
        );
        assert.equal(snapshot(layer), before, `${layer.name}: state changed by a failed load (bad ${bad})`);
        return true;
      }),
      { numRuns: runsOf(200), includeErrorInReport: true },
    );
  });
});
