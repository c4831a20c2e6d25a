/**
 * Row mode on the host: which kernels run in which order over a plan's scratch. Every loop over
 * columns, the statistics and the adding of the threads' partial sums run in wasm (assembly/rows.ts).
 */
import type { Job, Ptr } from './compiled.js';
import type { Plan } from './plan.js';
import type { State } from './state.js';
import { runJobs } from './state.js';

/** LANES_RSTD_MIN of assembly/lanes.ts (the host cannot import AssemblyScript). */
const LANES_RSTD_MIN = 1e-30;

/**
 * Float32 lanes hold rstd only inside float32's range: outside it a call with given statistics runs widened
 * to float64 (with batch statistics the kernels decide).
 */
export function lanesHold(rstd: ArrayLike<number>, count: number): boolean {
  for (let q = 0; q < count; q++) if (!(rstd[q] >= LANES_RSTD_MIN)) return false;
  return true;
}

/** Adds the threads' partial sums (the first two arrays, or all three) into the first thread's. */
export function addPartials(s: State, p: Plan, three = false): void {
  const parts = p.ranges.length;
  if (parts === 1) return;
  for (const partials of three ? [p.partials1, p.partials2, p.partials3] : [p.partials1, p.partials2]) s.kernels.add_partials(partials, parts, p.stride, p.partialLength);
}

/**
 * y from the statistics in p.mean and p.rstd: per-column parameters, then one pass (`fast`: in float32
 * lanes); `meanLo`: the widened path's mean is p.mean + p.meanLo (training), else p.mean alone.
 */
export function rowsNormalize(s: State, p: Plan, fast: boolean, py: Ptr, px: Ptr, pw: Ptr, pb: Ptr, meanLo = false): void {
  const { outer: A, span: S, groups: G, inner: B, affinePerGroup: K } = p.view;
  const cols = G * B;
  const [c0, c1, c2] = p.columns;
  if (fast) {
    s.kernels.rows_columns_f32x4(A, G, B, K, p.mean, p.rstd, pw, pb, c0, c1, c2);
    runJobs(s, p.ranges.map(([r0, r1]): Job => ({ fn: 'rows_normalize_f32x4', args: [py, px, S, cols, r0, r1, c0, c1, c2] })));
    return;
  }
  s.kernels[p.f32 ? 'rows_columns_f32' : 'rows_columns_f64'](A, G, B, K, p.mean, meanLo ? p.meanLo : 0, p.rstd, pw, pb, c0, c1, c2);
  const fn = p.f32 ? 'rows_affine_f32' : 'rows_affine_f64';
  runJobs(s, p.ranges.map(([r0, r1]): Job => ({ fn, args: [py, px, S, cols, r0, r1, c0, c1, c2] })));
}

/** Batch statistics into p.mean, p.variance, p.rstd, then y. */
export function rowsForwardTrain(s: State, p: Plan, py: Ptr, px: Ptr, pw: Ptr, pb: Ptr, eps: number): void {
  const { outer: A, span: S, groups: G, inner: B } = p.view;
  const cols = G * B;
  const M = S * B;
  const k = s.kernels;
  const [a1, a2, stride] = [p.partials1, p.partials2, p.stride];
  let fast = p.fast;
  if (fast) {
    // moments around a shift near the mean (the first rows' mean), corrected in float64: one pass over x;
    // where the shift proves far from the mean a second pass centres on the mean found
    const shift = p.columns[0];
    k.rows_shift_f32x4(px, S, A, G, B, shift);
    for (let pass = 0; pass < 2; pass++) {
      runJobs(s, p.ranges.map(([r0, r1], t): Job => ({ fn: 'rows_moments_f32x4', args: [px, S, A, cols, r0, r1, shift, a1 + t * stride, a2 + t * stride, p.lanes + t * p.laneStride] })));
      addPartials(s, p);
      const flags = k.rows_moment_stats_f32x4(a1, a2, shift, A, G, B, M, eps, p.mean, p.variance, p.rstd, pass === 0 ? 1 : 0);
      // bit 2: float32 squares overflowed or underflowed: the widened path below
      fast = (flags & 2) === 0;
      if ((flags & 1) === 0) break;
    }
  }
  if (!fast) {
    // hi = mean(x) from column sums; then d = x - hi (exact near the mean): lo = mean(d), var = mean(d^2) - lo^2 (corrected two-pass)
    const fn = p.f32 ? 'rows_sum_f32' : 'rows_sum_f64';
    const colMean = p.columns[0];
    for (const sq of [0, 1]) {
      runJobs(s, p.ranges.map(([r0, r1], t): Job => ({ fn, args: [px, S, A, cols, r0, r1, sq === 0 ? 0 : colMean, a1 + t * stride, a2 + t * stride] })));
      if (sq === 0 && p.ranges.length > 1) k.add_partials(a1, p.ranges.length, stride, p.partialLength);
      if (sq === 1) addPartials(s, p);
      k.rows_sum_stats(a1, a2, A, G, B, M, eps, sq, p.mean, p.meanLo, colMean, p.variance, p.rstd);
    }
  }
  rowsNormalize(s, p, fast, py, px, pw, pb, !fast);
}

/** dx from p.mean and p.rstd; dweight and dbias sums (float64) into p.dweight and p.dbias (`fast`: in float32 lanes). */
export function rowsBackward(s: State, p: Plan, fast: boolean, pdx: Ptr, pdy: Ptr, px: Ptr, pw: Ptr, batchStats: boolean): void {
  const { outer: A, span: S, groups: G, inner: B, affinePerGroup: K } = p.view;
  const cols = G * B;
  const M = S * B;
  const k = s.kernels;
  const [a1, a2, stride] = [p.partials1, p.partials2, p.stride];
  const [c0, c1, c2, c3, c4, c5] = p.columns;
  s.arena.zeroF64(p.dweight, G * K);
  s.arena.zeroF64(p.dbias, G * K);
  const batch = batchStats ? 1 : 0;
  // c0..c2: the mean's float32 rounding hi and rstd per column (rows_columns with no weight; c2 unused); c3..c5: k1 (k1*dy = dxTerm1), c1 (-dxTerm3, the mean term) and c2 (xhat*c2 = -dxTerm2, the x̂ term), as in the reference
  if (fast) {
    k.rows_columns_f32x4(A, G, B, K, p.mean, p.rstd, 0, 0, c0, c1, c2);
    runJobs(s, p.ranges.map(([r0, r1], t): Job => ({ fn: 'rows_backward_sums_f32x4', args: [px, pdy, S, A, cols, r0, r1, c0, a1 + t * stride, a2 + t * stride, p.lanes + t * p.laneStride] })));
    addPartials(s, p);
    k.rows_dx_coefs_f32x4(a1, a2, A, G, B, K, M, pw, p.mean, p.rstd, batch, p.dweight, p.dbias, c3, c4, c5);
    runJobs(s, p.ranges.map(([r0, r1]): Job => ({ fn: 'rows_dx_f32x4', args: [pdx, pdy, px, S, cols, r0, r1, c0, c1, c3, c4, c5] })));
    return;
  }
  // widened: the sums also take sum (x - mean) per column, from which the coefficients restore the batch mean's lost digits
  k[p.f32 ? 'rows_columns_f32' : 'rows_columns_f64'](A, G, B, K, p.mean, 0, p.rstd, 0, 0, c0, c2, c1);
  const a3 = p.partials3;
  const sums = p.f32 ? 'rows_backward_sums_f32' : 'rows_backward_sums_f64';
  runJobs(s, p.ranges.map(([r0, r1], t): Job => ({ fn: sums, args: [px, pdy, S, A, cols, r0, r1, c0, a1 + t * stride, a2 + t * stride, a3 + t * stride] })));
  addPartials(s, p, true);
  k[p.f32 ? 'rows_dx_coefs_f32' : 'rows_dx_coefs_f64'](a1, a2, a3, A, G, B, K, M, pw, p.rstd, batch, p.dweight, p.dbias, c3, c4, c5);
  const dx = p.f32 ? 'rows_dx_f32' : 'rows_dx_f64';
  runJobs(s, p.ranges.map(([r0, r1]): Job => ({ fn: dx, args: [pdx, pdy, px, S, cols, r0, r1, c0, c2, c3, c4, c5] })));
}
