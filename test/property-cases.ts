// Random kernel cases for the property tests (fast-check arbitraries) and their check against the exact
// oracle: every norm kind, ranks 2-5, both layouts, both dtypes, affine or not, training or eval, eps,
// offsets and scales from well conditioned to ill-conditioned (mean 1e4, std 1e-2) and near overflow.
import fc from 'fast-check';
import type { NormView, Reduction } from '../src/core/layout.ts';
import { affineIndexOf, affineSize, normView, statsCount } from '../src/core/layout.ts';
import type { NormKernels } from '../src/kernels/contract.ts';
import type { ReferenceResult } from '../src/reference/normalize.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import type { DType, FloatArray } from '../src/tensor.ts';
import { allocate } from '../src/tensor.ts';
import { Random } from './helpers.ts';

/** Runs of the property suite: `--long` (or NORMKIT_LONG=1) multiplies them by 20. */
export const longMode = process.argv.includes('--long') || process.env.NORMKIT_LONG === '1';
export const runsOf = (runs: number): number => (longMode ? 20 * runs : runs);

export interface KernelCase {
  readonly kind: Reduction['kind'];
  readonly shape: readonly number[];
  /** GroupNorm's groups, LayerNorm's normalized rank; 0 otherwise. */
  readonly param: number;
  readonly layout: 'channels-first' | 'channels-last';
  readonly dtype: DType;
  readonly affine: boolean;
  readonly train: boolean;
  readonly eps: number;
  /** x = offset + scale*z with z ~ N(0, 1) */
  readonly offset: number;
  readonly scale: number;
  readonly seed: number;
}

export function reductionOf(c: KernelCase): Reduction {
  if (c.kind === 'group') return { kind: 'group', groups: c.param };
  if (c.kind === 'layer') return { kind: 'layer', normalizedRank: c.param };
  return { kind: c.kind };
}

/** Offsets and scales per dtype: ordinary, ill-conditioned, tiny, near overflow (float32 ~1e20..1e36, float64 ~1e150). */
const conditioning = {
  float32: [
    [0, 1],
    [5, 3],
    [1e4, 1e-2],
    [-1e3, 1e-2],
    [0, 1e-20],
    [1e20, 1e19],
    [0, 1e20],
    [-3e36, 1e35],
  ],
  float64: [
    [0, 1],
    [5, 3],
    [1e4, 1e-2],
    [-1e6, 1e-3],
    [0, 1e-150],
    [1e150, 1e149],
    [0, 1e150],
  ],
} as const;

export function kernelCase(dtypes: readonly DType[]): fc.Arbitrary<KernelCase> {
  const dims = (rank: number) => fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.array(fc.integer({ min: 1, max: 9 }), { minLength: rank - 2, maxLength: rank - 2 }));
  return fc
    .record({
      kind: fc.constantFrom<Reduction['kind']>('batch', 'instance', 'group', 'layer'),
      rank: fc.integer({ min: 2, max: 5 }),
      layout: fc.constantFrom('channels-first' as const, 'channels-last' as const),
      dtype: fc.constantFrom(...dtypes),
      affine: fc.boolean(),
      train: fc.boolean(),
      eps: fc.constantFrom(1e-5, 1e-3, 1e-7, 0.1),
      conditioning: fc.nat(),
      paramPick: fc.nat(),
      seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    })
    .chain((r) => dims(r.rank).map(([n, c, rest]) => ({ ...r, shape: [n, c, ...rest] })))
    .map((r) => {
      const table = conditioning[r.dtype];
      const [offset, scale] = table[r.conditioning % table.length];
      const channels = r.shape[1];
      const divisors = Array.from({ length: channels }, (_, i) => i + 1).filter((d) => channels % d === 0);
      const param = r.kind === 'group' ? divisors[r.paramPick % divisors.length] : r.kind === 'layer' ? 1 + (r.paramPick % r.rank) : 0;
      // channels-last GroupNorm/LayerNorm shapes keep channels last; the layer view ignores layout
      const shape = r.layout === 'channels-last' && r.kind !== 'layer' ? [r.shape[0], ...r.shape.slice(2), channels] : r.shape;
      return { kind: r.kind, shape, param, layout: r.layout, dtype: r.dtype, affine: r.affine, train: r.train, eps: r.eps, offset, scale, seed: r.seed };
    });
}

/** max|actual - truth| / max|truth| (0/0 = 0). */
export function normalizedError(actual: ArrayLike<number>, truth: ArrayLike<number>): number {
  let diff = 0;
  let size = 0;
  for (let i = 0; i < truth.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - truth[i]));
    size = Math.max(size, Math.abs(truth[i]));
  }
  if (Number.isNaN(diff)) return Number.NaN;
  return diff === 0 ? 0 : diff / size;
}

const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

export interface Tolerance {
  /** normalized error of y, dx, dweight, dbias, and of the statistics */
  readonly output: number;
  readonly stats: number;
  /** dx may cancel (two values per group make it ~eps/var of its terms): rounding relative to its first term */
  readonly cancel: number;
}

export interface Outcome {
  readonly view: NormView;
  /** worst error of each checked tensor, in units of its tolerance (<= 1 passes) */
  readonly ratios: Readonly<Record<string, number>>;
}

/** Runs one case on `kernels` and measures every result against the exact reference. */
export function checkCase(kernels: NormKernels, c: KernelCase, tol: Tolerance): Outcome {
  const random = new Random(c.seed);
  const view = normView(reductionOf(c), c.shape, c.layout);
  const n = c.shape.reduce((p, d) => p * d, 1);
  const fill = (values: ArrayLike<number>): FloatArray => {
    const a = allocate(c.dtype, values.length);
    a.set(values);
    return a;
  };
  const x = fill(random.normals(n, c.offset, c.scale));
  const dy = fill(random.normals(n));
  const k = affineSize(view);
  const weight = c.affine ? fill(random.normals(k, 1, 0.5)) : null;
  const bias = c.affine ? fill(random.normals(k)) : null;
  const count = statsCount(view);
  const y = allocate(c.dtype, n).fill(Number.NaN);
  const dx = allocate(c.dtype, n).fill(Number.NaN);
  const dweight = c.affine ? allocate(c.dtype, k).fill(Number.NaN) : null;
  const dbias = c.affine ? allocate(c.dtype, k).fill(Number.NaN) : null;
  const ratios: Record<string, number> = {};
  const record = (name: string, error: number, bound: number): void => {
    ratios[name] = Number.isNaN(error) ? Number.POSITIVE_INFINITY : error === 0 ? 0 : error / bound;
  };
  // dweight, dbias are sums of M terms: allow float32 rounding of the terms themselves where they cancel
  const recordAffineGradients = (ref: ReferenceResult): void => {
    if (dweight === null || dbias === null) return;
    const absDgamma = new Float64Array(k);
    const absDbeta = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      const j = affineIndexOf(view, i);
      absDgamma[j] += Math.abs(dy[i] * ref.xhat[i]);
      absDbeta[j] += Math.abs(dy[i]);
    }
    record('dweight', maxAbsDiff(dweight, ref.dgamma), tol.output * maxAbs(ref.dgamma) + tol.cancel * maxAbs(absDgamma));
    record('dbias', maxAbsDiff(dbias, ref.dbeta), tol.output * maxAbs(ref.dbeta) + tol.cancel * maxAbs(absDbeta));
  };
  if (c.train) {
    const [mean, variance, rstd] = [new Float64Array(count), new Float64Array(count), new Float64Array(count)].map((a) => a.fill(Number.NaN));
    kernels.forwardTrain(y, x, view, weight, bias, c.eps, mean, variance, rstd);
    kernels.backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, true);
    const ref = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps: c.eps });
    // the mean is measured against the group's spread too: a mean of 0 has no digits of its own
    const spread = Math.sqrt(maxAbs(ref.var));
    record('mean', maxAbsDiff(mean, ref.mu), tol.stats * (maxAbs(ref.mu) + spread));
    record('var', normalizedError(variance, ref.var), tol.stats);
    record('y', normalizedError(y, ref.y), tol.output);
    record('dx', maxAbsDiff(dx, ref.dx), tol.output * maxAbs(ref.dx) + tol.cancel * maxAbs(ref.dxTerm1));
    recordAffineGradients(ref);
  } else {
    // eval: given statistics near the data's own
    const statsMu = Float64Array.from(random.normals(count, c.offset, c.scale * 0.1));
    const statsVar = Float64Array.from(random.normals(count), (z) => c.scale * c.scale * (0.5 + Math.abs(z)));
    const rstd = statsVar.map((v) => 1 / Math.sqrt(v + c.eps));
    kernels.forwardWithStats(y, x, view, weight, bias, statsMu, rstd);
    kernels.backward(dx, dweight, dbias, dy, x, view, weight, statsMu, rstd, false);
    const ref = referenceNorm({ x, dy, view, gamma: weight, beta: bias, eps: c.eps, stats: { mu: statsMu, var: statsVar } });
    record('y', normalizedError(y, ref.y), tol.output);
    record('dx', normalizedError(dx, ref.dx), tol.output);
    recordAffineGradients(ref);
  }
  return { view, ratios };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Number.NaN;
    m = Math.max(m, d);
  }
  return m;
}
