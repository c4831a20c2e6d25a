// The oracle is exact: every node of the float64 reference (double-double inside) is the exact value of the
// derivation rounded to float64, checked against an independent BigInt fixed-point evaluation (exact.ts)
// on ill-conditioned, near-overflow and tiny inputs; and the double-double primitives are error-free.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Reduction } from '../src/core/layout.ts';
import { normView } from '../src/core/layout.ts';
import * as dd from '../src/reference/dd.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { exactNorm, fixed, mul as fixedMul, toNumber } from './exact.ts';
import { Random } from './helpers.ts';

/** Worst |actual - exact| in ulps of the exact value (subnormal spacing as the floor). */
function ulps(actual: ArrayLike<number>, exact: readonly number[]): number {
  let worst = 0;
  for (let i = 0; i < exact.length; i++) {
    const ulp = Math.max(Number.EPSILON * Math.abs(exact[i]), 2 ** -1074);
    worst = Math.max(worst, Math.abs(actual[i] - exact[i]) / ulp);
  }
  return worst;
}

interface Case {
  readonly label: string;
  readonly reduction: Reduction;
  readonly shape: readonly number[];
  readonly mean: number;
  readonly std: number;
  readonly eps: number;
  readonly affine: boolean;
}

const cases: Case[] = [
  // the case: two values per group, mean 1e4 (the float64 derivation was off by 3.5e-6 in dx)
  { label: 'two values per group, mean 1e4, std 1e-2', reduction: { kind: 'batch' }, shape: [2, 3], mean: 1e4, std: 1e-2, eps: 1e-5, affine: true },
  { label: 'BatchNorm2d, mean 1e4, std 1e-2', reduction: { kind: 'batch' }, shape: [3, 2, 2, 3], mean: 1e4, std: 1e-2, eps: 1e-5, affine: true },
  { label: 'GroupNorm, mean 1e6, std 1e-3, eps 1e-7', reduction: { kind: 'group', groups: 2 }, shape: [2, 4, 3], mean: 1e6, std: 1e-3, eps: 1e-7, affine: true },
  { label: 'LayerNorm, mean -3e5, std 0.1', reduction: { kind: 'layer', normalizedRank: 2 }, shape: [2, 3, 5], mean: -3e5, std: 0.1, eps: 1e-5, affine: false },
  { label: 'InstanceNorm, well conditioned', reduction: { kind: 'instance' }, shape: [2, 3, 7], mean: 0.5, std: 2, eps: 1e-3, affine: true },
  // sums of M squares overflow although the variance does not (std 5e153, 48 values)
  { label: 'near overflow, std 5e153', reduction: { kind: 'batch' }, shape: [8, 2, 6], mean: 0, std: 5e153, eps: 1e-5, affine: true },
  { label: 'near overflow, mean 1.5e308 (sum x overflows)', reduction: { kind: 'batch' }, shape: [4, 2], mean: 1.5e308, std: 1e150, eps: 1e-5, affine: false },
  // squares underflow: var is below eps, and the reference still has every digit of it
  { label: 'tiny, std 1e-150', reduction: { kind: 'batch' }, shape: [6, 2], mean: 0, std: 1e-150, eps: 1e-5, affine: true },
];

describe('oracle: the reference is exact to float64 rounding', () => {
  for (const c of cases) {
    it(c.label, () => {
      const random = new Random(c.label.length);
      const view = normView(c.reduction, c.shape, 'channels-first');
      const n = c.shape.reduce((p, d) => p * d, 1);
      const x = random.normals(n, c.mean, c.std);
      const dy = random.normals(n);
      const k = view.groups * view.affinePerGroup;
      const gamma = c.affine ? random.normals(k, 1, 0.5) : null;
      const beta = c.affine ? random.normals(k) : null;
      const ref = referenceNorm({ x, dy, view, gamma, beta, eps: c.eps });
      const exact = exactNorm(x, dy, view, gamma, beta, c.eps);
      // within 1 ulp (an exactly rounded value is within half an ulp; exact.ts rounds within another half)
      const nodes = ['mu', 'var', 'xhat', 'y', 'dbeta', 'dgamma', 'dvar', 'dmu', 'dx'] as const;
      for (const node of nodes) assert.ok(ulps(ref[node], exact[node]) <= 1, `${node}: ${ulps(ref[node], exact[node])} ulps`);
    });
  }

  it('dmu loses its vanishing dvar term: sum(x - mu) is zero to double-double precision', () => {
    const random = new Random(5);
    const view = normView({ kind: 'batch' }, [5, 2], 'channels-first');
    const ref = referenceNorm({ x: random.normals(10, 1e4, 1e-2), dy: random.normals(10), view, eps: 1e-5 });
    for (let g = 0; g < 2; g++) assert.ok(Math.abs(ref.dmuVarTerm[g]) < 1e-25 * Math.abs(ref.dmu[g]), `${ref.dmuVarTerm[g]}`);
  });
});

describe('double-double primitives', () => {
  const random = new Random(17);
  const samples = Array.from({ length: 200 }, () => random.normal() * 10 ** random.int(-30, 30));

  it('two-sum and two-product are error-free, also beyond the split limit', () => {
    for (let i = 0; i + 1 < samples.length; i++) {
      const [a, b] = [samples[i], samples[i + 1]];
      const s = dd.twoSum(a, b);
      assert.equal(fixed(s.hi) + fixed(s.lo), fixed(a) + fixed(b));
      const p = dd.twoProd(a, b);
      assert.equal(fixed(p.hi) + fixed(p.lo), fixedMul(fixed(a), fixed(b)));
    }
    const big = dd.twoProd(1e300 + 2 ** 960, 3.3e-290);
    assert.equal(fixed(big.hi) + fixed(big.lo), fixedMul(fixed(1e300 + 2 ** 960), fixed(3.3e-290)));
  });

  it('divide and square root are accurate to ~2^-104', () => {
    for (let i = 0; i + 1 < samples.length; i++) {
      const x = dd.add(dd.fromNumber(samples[i]), dd.fromNumber(samples[i + 1] * 1e-17));
      const y = dd.fromNumber(samples[i + 1]);
      const q = dd.div(x, y);
      // q*y - x relative to x: the residual of a 106-bit quotient
      const residual = dd.sub(dd.mul(q, y), x);
      assert.ok(Math.abs(residual.hi) <= 2 ** -100 * Math.abs(x.hi), `div residual ${residual.hi} for ${x.hi}`);
      const r = dd.sqrt(dd.fromNumber(Math.abs(samples[i])));
      const square = dd.sub(dd.mul(r, r), dd.fromNumber(Math.abs(samples[i])));
      assert.ok(Math.abs(square.hi) <= 2 ** -100 * Math.abs(samples[i]), `sqrt residual ${square.hi}`);
    }
    assert.equal(toNumber(fixed(0.1)), 0.1);
  });
});
