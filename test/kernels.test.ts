// Every backend against the float64 reference on random views of every norm, layout and dtype.
import assert from 'node:assert/strict';
import type { Reduction } from '../src/core/layout.ts';
import { affineSize, normView, statsCount } from '../src/core/layout.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { allocate } from '../src/tensor.ts';
import { Random, maxAbsDiff } from './helpers.ts';
import { describeBackends } from './backends.ts';

const reductions: Reduction[] = [
  { kind: 'batch' },
  { kind: 'instance' },
  { kind: 'group', groups: 2 },
  { kind: 'layer', normalizedRank: 2 },
];

describeBackends('kernels', ({ name, kernels, it }) => {
  // webgpu computes these small groups in float-float (about 48 bits): statistics to 1e-12 like float64, dx's cancelling terms to 1e-13
  const statsTol = 1e-12;
  const cancelTol = name === 'webgpu' ? 1e-13 : 1e-14;
  for (const reduction of reductions) {
    for (const layout of ['channels-first', 'channels-last'] as const) {
      for (const dtype of ['float32', 'float64'] as const) {
        it(`${reduction.kind} ${layout} ${dtype}`, { dtype }, () => {
          const random = new Random(11);
          for (let trial = 0; trial < 4; trial++) {
            const shape = [random.int(1, 3), 2 * random.int(1, 3), random.int(2, 4), 2 * random.int(1, 2)];
            const view = normView(reduction, shape, layout);
            const n = shape.reduce((p, d) => p * d, 1);
            const x = allocate(dtype, n);
            x.set(random.normals(n, 5, 3));
            const dy = allocate(dtype, n);
            dy.set(random.normals(n));
            const k = affineSize(view);
            const weight = trial === 0 ? null : allocate(dtype, k).map(() => 1 + random.normal() * 0.3);
            const bias = trial === 0 ? null : allocate(dtype, k).map(() => random.normal());
            const count = statsCount(view);
            // outputs start as NaN: the kernel must overwrite every element
            const y = allocate(dtype, n).fill(Number.NaN);
            const mean = new Float64Array(count).fill(Number.NaN);
            const variance = new Float64Array(count).fill(Number.NaN);
            const rstd = new Float64Array(count).fill(Number.NaN);
            kernels.forwardTrain(y, x, view, weight, bias, 1e-5, mean, variance, rstd);
            const ref = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps: 1e-5 });
            const tol = dtype === 'float32' ? 1e-6 : 1e-12;
            const scale = (a: ArrayLike<number>) => Math.max(1e-12, ...Array.from(a, Math.abs));
            assert.ok(maxAbsDiff(mean, ref.mu) <= statsTol * (scale(ref.mu) + Math.sqrt(scale(ref.var))) + 1e-14);
            assert.ok(maxAbsDiff(variance, ref.var) <= statsTol * scale(ref.var));
            assert.ok(maxAbsDiff(y, ref.y) <= tol * scale(ref.y), `y ${maxAbsDiff(y, ref.y)}`);
            const dx = allocate(dtype, n).fill(Number.NaN);
            const dweight = weight && allocate(dtype, k).fill(Number.NaN);
            const dbias = bias && allocate(dtype, k).fill(Number.NaN);
            kernels.backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, true);
            // dx cancels (two values per group make it almost 0): allow rounding relative to its first term
            assert.ok(maxAbsDiff(dx, ref.dx) <= tol * scale(ref.dx) + cancelTol * scale(ref.dxTerm1), `dx ${maxAbsDiff(dx, ref.dx)}`);
            if (dweight && dbias) {
              assert.ok(maxAbsDiff(dweight, ref.dgamma) <= tol * scale(ref.dgamma));
              assert.ok(maxAbsDiff(dbias, ref.dbeta) <= tol * scale(ref.dbeta));
            }
            // eval: constant statistics
            const statsMu = random.normals(count, 5, 1);
            const statsVar = random.normals(count, 9, 1).map(Math.abs);
            const statsRstd = statsVar.map((v) => 1 / Math.sqrt(v + 1e-5));
            kernels.forwardWithStats(y, x, view, weight, bias, statsMu, statsRstd);
            const refEval = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps: 1e-5, stats: { mu: statsMu, var: statsVar } });
            assert.ok(maxAbsDiff(y, refEval.y) <= tol * scale(refEval.y));
            kernels.backward(dx, dweight, dbias, dy, x, view, weight, statsMu, statsRstd, false);
            assert.ok(maxAbsDiff(dx, refEval.dx) <= tol * scale(refEval.dx));
          }
        });
      }
    }
  }
});
