/**
 * The js kernels' column mode, for views whose affine runs are short (channels-last, LayerNorm): each
 * row of a block holds cols = G*B values, and every per-element constant becomes a per-column array,
 * so the inner loop is a short multiply-add over a row. Same float64 math as the run mode in norm.ts
 * (the mean as hi + lo, corrected two-pass variance).
 * View letters: A blocks, S span, G groups, B run, K affine entries per group, R = B/K, M = S*B.
 */
import type { NormView } from '../../core/layout.js';
import type { FloatArray } from '../../core/float.js';
import type { NormKernels } from '../contract.js';

/** Where |mean|*rstd exceeds this, the cached mean's rounding would move xhat by more than its own rounding. */
export const MEAN_LO_MIN = 1;

interface Columns {
  readonly cols: number;
  /** group g of each column */
  readonly group: Int32Array;
  /** affine entry j = g*K + floor(b/R) of each column */
  readonly affine: Int32Array;
}

function columnsOf(view: NormView): Columns {
  const { groups: G, inner: B, affinePerGroup: K } = view;
  const cols = G * B;
  const R = B / K;
  const group = new Int32Array(cols);
  const affine = new Int32Array(cols);
  for (let c = 0; c < cols; c++) {
    group[c] = Math.floor(c / B);
    affine[c] = group[c] * K + Math.floor((c % B) / R);
  }
  return { cols, group, affine };
}

/** Per-column sums over the block's rows of x (shift null), or of d = x - shift[c] and, given squares, d^2. */
function columnSums(out: Float64Array, x: FloatArray, first: number, rows: number, shift: Float64Array | null, squares: Float64Array | null): void {
  const cols = out.length;
  out.fill(0);
  squares?.fill(0);
  let i = first;
  for (let s = 0; s < rows; s++) {
    if (shift === null) {
      for (let c = 0; c < cols; c++, i++) out[c] += x[i];
    } else if (squares === null) {
      for (let c = 0; c < cols; c++, i++) out[c] += x[i] - shift[c];
    } else {
      for (let c = 0; c < cols; c++, i++) {
        const d = x[i] - shift[c];
        out[c] += d;
        squares[c] += d * d;
      }
    }
  }
}

export const forwardTrainColumns: NormKernels['forwardTrain'] = (y, x, view, weight, bias, eps, mean, variance, rstd) => {
  const { outer: A, span: S, groups: G } = view;
  const { cols, group } = columnsOf(view);
  const m = S * (cols / G);
  const sums = new Float64Array(cols);
  const squares = new Float64Array(cols);
  const colMean = new Float64Array(cols);
  const meanLo = new Float64Array(A * G);
  for (let a = 0; a < A; a++) {
    const first = a * S * cols;
    const stat0 = a * G;
    // hi = mean(x); then d = x - hi (exact near the mean): lo = mean(d), var = mean(d^2) - lo^2 (corrected two-pass)
    columnSums(sums, x, first, S, null, null);
    mean.fill(0, stat0, stat0 + G);
    for (let c = 0; c < cols; c++) mean[stat0 + group[c]] += sums[c];
    for (let g = 0; g < G; g++) mean[stat0 + g] /= m;
    for (let c = 0; c < cols; c++) colMean[c] = mean[stat0 + group[c]];
    columnSums(sums, x, first, S, colMean, squares);
    variance.fill(0, stat0, stat0 + G);
    for (let c = 0; c < cols; c++) {
      meanLo[stat0 + group[c]] += sums[c];
      variance[stat0 + group[c]] += squares[c];
    }
    for (let g = 0; g < G; g++) {
      const q = stat0 + g;
      meanLo[q] /= m;
      variance[q] = Math.max(0, variance[q] / m - meanLo[q] * meanLo[q]);
      rstd[q] = 1 / Math.sqrt(variance[q] + eps);
    }
  }
  normalizeColumns(y, x, view, weight, bias, mean, meanLo, rstd);
  // the cached mean: hi + lo rounded once
  for (let q = 0; q < mean.length; q++) mean[q] += meanLo[q];
};

/** y = ((x - hi) - lo)*scale + beta per column, scale = rstd*gamma: no cancellation against a large mean*scale. */
function normalizeColumns(y: FloatArray, x: FloatArray, view: NormView, weight: FloatArray | null, bias: FloatArray | null, mean: Float64Array, meanLo: Float64Array | null, rstd: Float64Array): void {
  const { outer: A, span: S, groups: G } = view;
  const { cols, group, affine } = columnsOf(view);
  const hi = new Float64Array(cols);
  const lo = new Float64Array(cols);
  const scale = new Float64Array(cols);
  const shift = new Float64Array(cols);
  let i = 0;
  for (let a = 0; a < A; a++) {
    for (let c = 0; c < cols; c++) {
      const q = a * G + group[c];
      hi[c] = mean[q];
      lo[c] = meanLo === null ? 0 : meanLo[q];
      scale[c] = weight === null ? rstd[q] : rstd[q] * weight[affine[c]];
      shift[c] = bias === null ? 0 : bias[affine[c]];
    }
    for (let s = 0; s < S; s++) for (let c = 0; c < cols; c++, i++) y[i] = (x[i] - hi[c] - lo[c]) * scale[c] + shift[c];
  }
}

export const forwardWithStatsColumns: NormKernels['forwardWithStats'] = (y, x, view, weight, bias, mean, rstd) => {
  normalizeColumns(y, x, view, weight, bias, mean, null, rstd);
};

export const backwardColumns: NormKernels['backward'] = (dx, dweight, dbias, dy, x, view, weight, mean, rstd, batchStats) => {
  const { outer: A, span: S, groups: G, affinePerGroup: K } = view;
  const { cols, group, affine } = columnsOf(view);
  const m = S * (cols / G);
  const colMean = new Float64Array(cols);
  const colLo = new Float64Array(cols);
  const colRstd = new Float64Array(cols);
  const colDy = new Float64Array(cols);
  const colDyXhat = new Float64Array(cols);
  const sums = new Float64Array(cols);
  const meanLo = new Float64Array(G);
  const k1 = new Float64Array(cols);
  const c1 = new Float64Array(cols);
  const c2 = new Float64Array(cols);
  const sumDweight = new Float64Array(G * K);
  const sumDbias = new Float64Array(G * K);
  const sumDxhat = new Float64Array(G);
  const sumDxhatXhat = new Float64Array(G);
  for (let a = 0; a < A; a++) {
    const first = a * S * cols;
    for (let c = 0; c < cols; c++) {
      colMean[c] = mean[a * G + group[c]];
      colRstd[c] = rstd[a * G + group[c]];
    }
    // batch statistics: the cached mean is the batch mean rounded; where that shows against the spread
    // (|mean|*rstd > MEAN_LO_MIN), lo = mean(x - mean) restores its lost digits (one more pass)
    meanLo.fill(0);
    if (batchStats && colMean.some((mu, c) => Math.abs(mu) * colRstd[c] > MEAN_LO_MIN)) {
      columnSums(sums, x, first, S, colMean, null);
      for (let c = 0; c < cols; c++) meanLo[group[c]] += sums[c] / m;
    }
    for (let c = 0; c < cols; c++) colLo[c] = meanLo[group[c]];
    // reductions per column: sum dy, sum dy*xhat with xhat = ((x - mean) - lo)*rstd
    colDy.fill(0);
    colDyXhat.fill(0);
    let i = first;
    for (let s = 0; s < S; s++) {
      for (let c = 0; c < cols; c++, i++) {
        colDy[c] += dy[i];
        colDyXhat[c] += dy[i] * (x[i] - colMean[c] - colLo[c]) * colRstd[c];
      }
    }
    sumDxhat.fill(0);
    sumDxhatXhat.fill(0);
    for (let c = 0; c < cols; c++) {
      const w = weight === null ? 1 : weight[affine[c]];
      sumDbias[affine[c]] += colDy[c];
      sumDweight[affine[c]] += colDyXhat[c];
      sumDxhat[group[c]] += w * colDy[c];
      sumDxhatXhat[group[c]] += w * colDyXhat[c];
    }
    // dx = rstd*(w*dy - sum(dxhat)/M - xhat*sum(dxhat*xhat)/M), per-column constants; in the reference's terms
    // k1*dy = dxTerm1, c1 = -dxTerm3 = rstd*sum(dxhat)/M, xhat*c2 = -dxTerm2 = xhat*rstd*sum(dxhat*xhat)/M
    for (let c = 0; c < cols; c++) {
      const r = colRstd[c];
      k1[c] = r * (weight === null ? 1 : weight[affine[c]]);
      c1[c] = batchStats ? (r * sumDxhat[group[c]]) / m : 0;
      c2[c] = batchStats ? (r * sumDxhatXhat[group[c]]) / m : 0;
    }
    i = first;
    for (let s = 0; s < S; s++) {
      for (let c = 0; c < cols; c++, i++) dx[i] = k1[c] * dy[i] - c1[c] - (x[i] - colMean[c] - colLo[c]) * colRstd[c] * c2[c];
    }
  }
  if (dweight !== null) dweight.set(sumDweight);
  if (dbias !== null) dbias.set(sumDbias);
};
