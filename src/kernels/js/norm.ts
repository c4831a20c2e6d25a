/**
 * Plain TypeScript kernels: float64 accumulation, corrected two-pass variance (no E[x^2] - E[x]^2 on raw
 * data), the mean kept as hi + lo so x - mean loses no digits however large the mean,
 * rstd once per statistics group, memory-order traversal so every layout streams. Run mode here
 * (long affine runs: channels-first); column mode in columns.ts (channels-last, LayerNorm).
 * View letters: A blocks, S span, G groups, B run, K affine entries per group, R = B/K, M = S*B.
 */
import type { NormView } from '../../core/layout.js';
import type { FloatArray } from '../../core/float.js';
import type { NormKernels } from '../contract.js';
import { MEAN_LO_MIN, backwardColumns, forwardTrainColumns, forwardWithStatsColumns } from './columns.js';

/** Affine runs shorter than this go to column mode (columns.ts) where rows repeat (S > 1) to amortize its per-column constants. */
const RUN_MODE_MIN = 8;

const short = (view: NormView) => view.inner / view.affinePerGroup < RUN_MODE_MIN && view.span > 1;

const forwardTrain: NormKernels['forwardTrain'] = (y, x, view, weight, bias, eps, mean, variance, rstd) => {
  const { outer: A, span: S, groups: G, inner: B } = view;
  const m = S * B;
  const meanLo = new Float64Array(A * G);
  for (let a = 0; a < A; a++) {
    const first = a * S * G * B;
    const stat0 = a * G;
    // pass 1: hi = mean(x), rounded
    mean.fill(0, stat0, stat0 + G);
    let i = first;
    for (let s = 0; s < S; s++) {
      for (let g = 0; g < G; g++) {
        let sum = 0;
        for (let b = 0; b < B; b++) sum += x[i++];
        mean[stat0 + g] += sum;
      }
    }
    for (let g = 0; g < G; g++) mean[stat0 + g] /= m;
    // pass 2 (corrected two-pass): d = x - hi is exact near the mean; lo = mean(d), var = mean(d^2) - lo^2
    variance.fill(0, stat0, stat0 + G);
    i = first;
    for (let s = 0; s < S; s++) {
      for (let g = 0; g < G; g++) {
        const hi = mean[stat0 + g];
        let sum = 0;
        let sumSq = 0;
        for (let b = 0; b < B; b++) {
          const d = x[i++] - hi;
          sum += d;
          sumSq += d * d;
        }
        meanLo[stat0 + g] += sum;
        variance[stat0 + g] += sumSq;
      }
    }
    for (let g = 0; g < G; g++) {
      const q = stat0 + g;
      const lo = meanLo[q] / m;
      meanLo[q] = lo;
      variance[q] = Math.max(0, variance[q] / m - lo * lo);
      rstd[q] = 1 / Math.sqrt(variance[q] + eps);
    }
  }
  normalize(y, x, view, weight, bias, mean, meanLo, rstd);
  // the cached mean: hi + lo rounded once
  for (let q = 0; q < mean.length; q++) mean[q] += meanLo[q];
};

/** y = ((x - hi) - lo)*scale + beta with scale = rstd*gamma: no cancellation against a large mean*scale. */
function normalize(y: FloatArray, x: FloatArray, view: NormView, weight: FloatArray | null, bias: FloatArray | null, mean: Float64Array, meanLo: Float64Array | null, rstd: Float64Array): void {
  const { outer: A, span: S, groups: G, inner: B, affinePerGroup: K } = view;
  const R = B / K;
  let i = 0;
  for (let a = 0; a < A; a++) {
    for (let s = 0; s < S; s++) {
      for (let g = 0; g < G; g++) {
        const hi = mean[a * G + g];
        const lo = meanLo === null ? 0 : meanLo[a * G + g];
        const r = rstd[a * G + g];
        for (let k = 0; k < K; k++) {
          const j = g * K + k;
          const scale = weight === null ? r : r * weight[j];
          const shift = bias === null ? 0 : bias[j];
          for (let e = 0; e < R; e++, i++) y[i] = (x[i] - hi - lo) * scale + shift;
        }
      }
    }
  }
}

const forwardWithStats: NormKernels['forwardWithStats'] = (y, x, view, weight, bias, mean, rstd) => {
  normalize(y, x, view, weight, bias, mean, null, rstd);
};

/**
 * lo = mean(x - mean) per group of block a, the digits the cached batch mean lost to rounding; 0 where
 * they cannot show (|mean|*rstd <= MEAN_LO_MIN: within xhat's own rounding), so centred data skips the extra pass.
 */
function batchMeanLo(meanLo: Float64Array, x: FloatArray, view: NormView, a: number, mean: Float64Array, rstd: Float64Array): void {
  const { span: S, groups: G, inner: B } = view;
  meanLo.fill(0);
  let needed = false;
  for (let g = 0; g < G; g++) needed ||= Math.abs(mean[a * G + g]) * rstd[a * G + g] > MEAN_LO_MIN;
  if (!needed) return;
  let i = a * S * G * B;
  for (let s = 0; s < S; s++) {
    for (let g = 0; g < G; g++) {
      const mu = mean[a * G + g];
      let sum = 0;
      for (let b = 0; b < B; b++) sum += x[i++] - mu;
      meanLo[g] += sum;
    }
  }
  for (let g = 0; g < G; g++) meanLo[g] /= S * B;
}

const backward: NormKernels['backward'] = (dx, dweight, dbias, dy, x, view, weight, mean, rstd, batchStats) => {
  const { outer: A, span: S, groups: G, inner: B, affinePerGroup: K } = view;
  const R = B / K;
  const m = S * B;
  const sumDweight = new Float64Array(G * K);
  const sumDbias = new Float64Array(G * K);
  const meanLo = new Float64Array(G);
  const sumDxhat = new Float64Array(G);
  const sumDxhatXhat = new Float64Array(G);
  for (let a = 0; a < A; a++) {
    const first = a * S * G * B;
    const stat0 = a * G;
    // batch statistics: the cached mean is the batch mean rounded; xhat = ((x - mean) - lo)*rstd
    if (batchStats) batchMeanLo(meanLo, x, view, a, mean, rstd);
    // reductions: sum dxhat and sum dxhat*xhat per group, dgamma and dbeta per affine entry
    sumDxhat.fill(0);
    sumDxhatXhat.fill(0);
    let i = first;
    for (let s = 0; s < S; s++) {
      for (let g = 0; g < G; g++) {
        const mu = mean[stat0 + g];
        const lo = meanLo[g];
        const r = rstd[stat0 + g];
        let groupDxhat = 0;
        let groupDxhatXhat = 0;
        for (let k = 0; k < K; k++) {
          const j = g * K + k;
          let sumDy = 0;
          let sumDyXhat = 0;
          for (let e = 0; e < R; e++, i++) {
            const xhat = (x[i] - mu - lo) * r;
            sumDy += dy[i];
            sumDyXhat += dy[i] * xhat;
          }
          const w = weight === null ? 1 : weight[j];
          sumDbias[j] += sumDy;
          sumDweight[j] += sumDyXhat;
          groupDxhat += w * sumDy;
          groupDxhatXhat += w * sumDyXhat;
        }
        sumDxhat[g] += groupDxhat;
        sumDxhatXhat[g] += groupDxhatXhat;
      }
    }
    // dx = rstd*(dxhat - sum(dxhat)/M - xhat*sum(dxhat*xhat)/M); constant statistics keep rstd*dxhat.
    // The reference's terms: dxTerm1 = rstd*dxhat, dxTerm3 = dmu/M = -rstd*meanDxhat, dxTerm2 = dvar*2(x - mu)/M = -rstd*xhat*meanDxhatXhat
    i = first;
    for (let s = 0; s < S; s++) {
      for (let g = 0; g < G; g++) {
        const mu = mean[stat0 + g];
        const lo = meanLo[g];
        const r = rstd[stat0 + g];
        const meanDxhat = batchStats ? sumDxhat[g] / m : 0;
        const meanDxhatXhat = batchStats ? sumDxhatXhat[g] / m : 0;
        for (let k = 0; k < K; k++) {
          const w = weight === null ? 1 : weight[g * K + k];
          for (let e = 0; e < R; e++, i++) {
            const xhat = (x[i] - mu - lo) * r;
            dx[i] = r * (w * dy[i] - meanDxhat - xhat * meanDxhatXhat);
          }
        }
      }
    }
  }
  if (dweight !== null) dweight.set(sumDweight);
  if (dbias !== null) dbias.set(sumDbias);
};

export const jsKernels: NormKernels = {
  name: 'js',
  dtypes: ['float32', 'float64'],
  forwardTrain: (...args) => {
    (short(args[2]) ? forwardTrainColumns : forwardTrain)(...args);
  },
  forwardWithStats: (...args) => {
    (short(args[2]) ? forwardWithStatsColumns : forwardWithStats)(...args);
  },
  backward: (...args) => {
    (short(args[5]) ? backwardColumns : backward)(...args);
  },
};
