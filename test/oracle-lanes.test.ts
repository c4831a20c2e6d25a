// The wasm kernels' float32 lanes (statistics groups of 64 values or more: F32_LANES_MIN in
// src/kernels/wasm/backend.ts) against the exact oracle at the accuracy the README claims, from several
// shapes of each mechanism (group mode per run, LayerNorm's per-value affine runs, GroupNorm's affine
// runs, row mode), on one thread and on two with group and row counts that leave a remainder; and inputs
// whose float32 squares overflow or underflow (|x| ~ 1e20, 1e36; std 1e-20), which must fall back to float64;
// and a first sample far from the mean, where the moments taken around it must be taken again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Reduction } from '../src/core/layout.ts';
import { affineSize, normView, statsCount } from '../src/core/layout.ts';
import { backends } from '../src/kernels/index.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import { GroupNorm } from '../src/nn/groupnorm.ts';
import { NormkitError } from '../src/errors.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { onTwoThreads, Random } from './helpers.ts';
import { normalizedError } from './property-cases.ts';

interface LaneShape {
  readonly label: string;
  readonly reduction: Reduction;
  readonly shape: readonly number[];
  readonly layout: 'channels-first' | 'channels-last';
}

// long runs (a float32 accumulation over a whole run would show), row counts 675 and 1365
const shapes: LaneShape[] = [
  { label: 'InstanceNorm2d, runs of 9216', reduction: { kind: 'instance' }, shape: [1, 3, 96, 96], layout: 'channels-first' },
  { label: 'BatchNorm2d, 3 runs of 4096 per channel', reduction: { kind: 'batch' }, shape: [3, 3, 64, 64], layout: 'channels-first' },
  { label: 'GroupNorm, 2 affine runs of 4096 per group', reduction: { kind: 'group', groups: 3 }, shape: [1, 6, 64, 64], layout: 'channels-first' },
  { label: 'LayerNorm, one affine entry per value (3 rows of 8192)', reduction: { kind: 'layer', normalizedRank: 1 }, shape: [3, 8192], layout: 'channels-first' },
  { label: 'BatchNorm2d channels-last (row mode)', reduction: { kind: 'batch' }, shape: [5, 9, 15, 4], layout: 'channels-last' },
  { label: 'InstanceNorm2d channels-last (row mode)', reduction: { kind: 'instance' }, shape: [7, 5, 39, 3], layout: 'channels-last' },
];

// over 4 MB a thread, row mode takes one row a step (FOUR_ROWS_MAX_BYTES in assembly/rows.ts); the others four
const largeRows: LaneShape = { label: 'BatchNorm2d channels-last, 5 MB (row mode, one row a step)', reduction: { kind: 'batch' }, shape: [5, 64, 64, 64], layout: 'channels-last' };

// small float32-lane shapes (64 values or more per group, 1024 elements or more for the pool) whose
// statistics counts (3, 5, 7) and row counts (5*5*9, 3*65) two threads split unevenly
const smallShapes: LaneShape[] = [
  { label: 'InstanceNorm1d, runs of 345', reduction: { kind: 'instance' }, shape: [1, 3, 345], layout: 'channels-first' },
  { label: 'BatchNorm2d, 3 runs of 72 per channel', reduction: { kind: 'batch' }, shape: [3, 5, 8, 9], layout: 'channels-first' },
  { label: 'GroupNorm, 2 affine runs of 80 per group', reduction: { kind: 'group', groups: 7 }, shape: [1, 14, 8, 10], layout: 'channels-first' },
  { label: 'LayerNorm, 3 rows of 400', reduction: { kind: 'layer', normalizedRank: 1 }, shape: [3, 400], layout: 'channels-first' },
  { label: 'BatchNorm2d channels-last (row mode)', reduction: { kind: 'batch' }, shape: [5, 5, 9, 5], layout: 'channels-last' },
  { label: 'InstanceNorm1d channels-last (row mode)', reduction: { kind: 'instance' }, shape: [3, 65, 11], layout: 'channels-last' },
];

/**
 * README (Accuracy): float32-lane statistics within 1e-7, and within 5e-8 on long runs (measured at most
 * 2.4e-9 in group mode, 2.2e-8 in row mode; accumulating the squares in float32 over a whole run gives
 * 1.2e-7 to 3.9e-7 there); outputs within 2e-7 (float32 lanes round an output up to three times).
 */
const STATS_TOL = 1e-7;
const LONG_RUN_STATS_TOL = 5e-8;
const OUTPUT_TOL = 2e-7;

/** `first`: added to the first sample's values (BatchNorm: the first run of every channel, or its first rows). */
function check(s: LaneShape, offset: number, std: number, statsTol = STATS_TOL, first = 0): void {
  const random = new Random(s.shape.reduce((p, d) => p * 31 + d, 7));
  const view = normView(s.reduction, s.shape, s.layout);
  assert.ok(view.span * view.inner >= 64, 'a float32-lane shape');
  const n = s.shape.reduce((p, d) => p * d, 1);
  const x = Float32Array.from(random.normals(n, offset, std));
  for (let i = 0; i < n / s.shape[0]; i++) x[i] += first;
  const dy = Float32Array.from(random.normals(n));
  const k = affineSize(view);
  const weight = Float32Array.from(random.normals(k, 1, 0.3));
  const bias = Float32Array.from(random.normals(k));
  const count = statsCount(view);
  const [mean, variance, rstd] = [0, 0, 0].map(() => new Float64Array(count).fill(Number.NaN));
  const y = new Float32Array(n).fill(Number.NaN);
  backends.wasm.forwardTrain(y, x, view, weight, bias, 1e-5, mean, variance, rstd);
  const dx = new Float32Array(n).fill(Number.NaN);
  backends.wasm.backward(dx, null, null, dy, x, view, weight, mean, rstd, true);
  const ref = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps: 1e-5 });
  const spread = Math.sqrt(Math.max(...ref.var));
  const meanError = Math.max(...Array.from(mean, (m, q) => Math.abs(m - ref.mu[q]))) / (Math.max(...Array.from(ref.mu, Math.abs)) + spread);
  assert.ok(meanError <= statsTol, `mean: ${meanError}`);
  assert.ok(normalizedError(variance, ref.var) <= statsTol, `var: ${normalizedError(variance, ref.var)}`);
  assert.ok(normalizedError(y, ref.y) <= OUTPUT_TOL, `y: ${normalizedError(y, ref.y)}`);
  assert.ok(normalizedError(dx, ref.dx) <= OUTPUT_TOL, `dx: ${normalizedError(dx, ref.dx)}`);
}

function sweep(list: readonly LaneShape[], statsTol: number): void {
  for (const s of list) {
    for (const [offset, std] of [
      [0, 1],
      [1e3, 1e-2],
    ] as const) {
      it(`${s.label} [${s.shape.join(',')}], mean ${offset}, std ${std}`, () => {
        check(s, offset, std, statsTol);
      });
    }
  }
}

describe('wasm float32 lanes against the exact oracle, one thread', () => {
  sweep([...shapes, largeRows], LONG_RUN_STATS_TOL);
});

describe('wasm float32 lanes: a shift taken from the first values, far from the mean', () => {
  // the moments are summed around the mean of the first run (group mode) or first rows (row mode): where that
  // proves far from the mean they are summed again around the mean found
  // 32 samples: the first is a thirty-second of each group, so a shift at its mean is far from the group's
  const manySamples: LaneShape[] = [
    { label: 'BatchNorm2d, 32 runs of 64 per channel', reduction: { kind: 'batch' }, shape: [32, 2, 8, 8], layout: 'channels-first' },
    { label: 'BatchNorm2d channels-last, 32 samples of 64 rows (row mode)', reduction: { kind: 'batch' }, shape: [32, 8, 8, 2], layout: 'channels-last' },
  ];
  for (const s of [...shapes.filter((shape) => shape.reduction.kind === 'batch'), ...manySamples]) {
    for (const [offset, std, first] of [
      [0, 1e-2, 1e3],
      [1e3, 1e-2, -0.5],
      [0, 1, 30],
      [0, 1e-3, 1],
    ] as const) {
      it(`${s.label}: mean ${offset}, std ${std}, first sample moved by ${first}`, () => {
        check(s, offset, std, STATS_TOL, first);
      });
    }
  }
});

// BatchNorm's groups go in blocks of about 4 MB of x a thread (BLOCK_BYTES in assembly/norm.ts): 3 channels of
// 32 runs of 10938 values (1.4 MB) make blocks of 2 and 1 on one thread, of 1 and 2 on two; at mean 1e3 and
// std 1e-2 the first of 32 samples moved by -0.5 puts the shift far from the mean (E[x - shift]^2 = 31 var)
const blocked: LaneShape = { label: 'BatchNorm1d, 3 channels of 32 runs of 10938', reduction: { kind: 'batch' }, shape: [32, 3, 10938], layout: 'channels-first' };

describe('wasm float32 lanes, BatchNorm groups in blocks', () => {
  it('one thread: a first sample far from the mean (its groups redone alone), and rstd below float32 lanes (widened)', () => {
    check(blocked, 1e3, 1e-2, STATS_TOL, -0.5);
    check(blocked, -3e36, 1e35);
  });
  describe('two threads', () => {
    onTwoThreads(1 << 10);
    it('a block of two on the second thread', () => {
      check(blocked, 0, 1);
      check(blocked, 1e3, 1e-2, STATS_TOL, -0.5);
    });
  });
});

describe('wasm float32 lanes against the exact oracle, two threads (uneven splits)', () => {
  onTwoThreads(1 << 10);
  sweep(smallShapes, STATS_TOL);
});

describe('wasm float32 lanes where float32 squares overflow or underflow (finite input)', () => {
  for (const s of smallShapes) {
    for (const [offset, std] of [
      [0, 1e20],
      [1e20, 1e19],
      [-3e36, 1e35],
      [0, 1e-20],
    ] as const) {
      it(`${s.label}: mean ${offset}, std ${std}`, () => {
        check(s, offset, std);
      });
    }
  }

  it("GroupNorm and BatchNorm2d layers (both layouts) at |x| ~ 1e20: y is normalized, and nonFinite 'throw' does not throw", () => {
    const random = new Random(3);
    // BatchNorm without running statistics: with them, running_var (1e40) would overflow float32, which 'throw' refuses
    const layers = [
      new GroupNorm(2, 4, { backend: 'wasm', nonFinite: 'throw' }),
      new BatchNorm2d(4, { backend: 'wasm', nonFinite: 'throw', trackRunningStats: false }),
      new BatchNorm2d(4, { backend: 'wasm', nonFinite: 'throw', layout: 'channels-last', trackRunningStats: false }),
    ];
    for (const layer of layers) {
      const shape = layer === layers[2] ? [2, 8, 8, 4] : [2, 4, 8, 8];
      const x = Float32Array.from(random.normals(512, 0, 1e20));
      let y: Float32Array | Float64Array = new Float32Array(0);
      assert.doesNotThrow(() => {
        y = layer.forward({ data: x, shape }).data;
      });
      const ref = referenceNorm({ x, view: layer.viewOf(shape), eps: layer.eps });
      assert.ok(normalizedError(y, ref.y) <= OUTPUT_TOL, `${layer.name} y: ${normalizedError(y, ref.y)}`);
    }
    // with running statistics the float32 running_var would be Infinity: 'throw' says the statistics overflow
    const tracking = new BatchNorm2d(4, { backend: 'wasm', nonFinite: 'throw' });
    assert.throws(() => tracking.forward({ data: Float32Array.from(random.normals(512, 0, 1e20)), shape: [2, 4, 8, 8] }), /batch statistics overflow \(finite input too large for the statistics\)/);
    // and a real Inf still throws
    const layer = new GroupNorm(2, 4, { backend: 'wasm', nonFinite: 'throw' });
    assert.throws(() => layer.forward({ data: new Float32Array(512).fill(Number.POSITIVE_INFINITY), shape: [2, 4, 8, 8] }), NormkitError);
  });
});
