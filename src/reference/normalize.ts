/**
 * The float64 oracle: batch normalization forward and backward written node by node as in the
 * derivation (Ioffe & Szegedy 2015, Alg. 1 and the chain rule of Sec. 3), for every norm of the
 * core: a "channel" of the derivation is a statistics group q of the view, N its size M.
 *
 * Forward:  mu = mean(x),  var = mean((x - mu)^2),  xhat = (x - mu)/sqrt(var + eps),  y = gamma*xhat + beta
 * Backward: dbeta = sum dy,  dgamma = sum dy*xhat,  dxhat = dy*gamma,
 *           dvar = sum dxhat*(x - mu)*(-1/2)(var + eps)^(-3/2),
 *           dmu = sum dxhat*(-1/sqrt(var + eps)) + dvar*sum(-2(x - mu))/M   (second term is 0: sum(x - mu) = 0)
 *           dx = dxhat/sqrt(var + eps) + dvar*2(x - mu)/M + dmu/M
 *
 * References: S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by
 * Reducing Internal Covariate Shift", ICML 2015.
 */
import type { NormView } from '../core/layout.js';
import { affineIndexOf, affineSize, reduceSize, statsCount, statsIndexOf } from '../core/layout.js';

export interface ReferenceInput {
  /** Input in memory order (any float array; read as float64). */
  readonly x: ArrayLike<number>;
  /** dL/dy, same length as x; omit for a forward pass only. */
  readonly dy?: ArrayLike<number>;
  readonly view: NormView;
  /** gamma per affine entry (G*K); omit for weight 1. */
  readonly gamma?: ArrayLike<number> | null;
  /** beta per affine entry (G*K); omit for bias 0. */
  readonly beta?: ArrayLike<number> | null;
  readonly eps: number;
  /** Given statistics, one per statistics group (eval: running statistics); omit to compute the batch's. */
  readonly stats?: { readonly mu: ArrayLike<number>; readonly var: ArrayLike<number> } | null;
  /** Whether mu and var are functions of x, so dx flows through them; default: true exactly when stats are omitted. */
  readonly batchStats?: boolean;
}

/**
 * Every intermediate of the derivation. Per statistics group q (length A*G): mu, var, dvar, dmu,
 * dmuVarTerm. Per affine entry j (length G*K): dgamma, dbeta. Per element i in memory order:
 * xhat, y, dxhat, dx and its three terms dxTerm1 = dxhat/sqrt(var+eps), dxTerm2 = dvar*2(x-mu)/M,
 * dxTerm3 = dmu/M. Backward fields are empty arrays when no dy was given.
 */
export interface ReferenceResult {
  readonly m: number;
  readonly mu: Float64Array;
  readonly var: Float64Array;
  readonly xhat: Float64Array;
  readonly y: Float64Array;
  readonly dbeta: Float64Array;
  readonly dgamma: Float64Array;
  readonly dxhat: Float64Array;
  readonly dvar: Float64Array;
  readonly dmuVarTerm: Float64Array;
  readonly dmu: Float64Array;
  readonly dxTerm1: Float64Array;
  readonly dxTerm2: Float64Array;
  readonly dxTerm3: Float64Array;
  readonly dx: Float64Array;
}

export function referenceNorm(input: ReferenceInput): ReferenceResult {
  const { x, dy, view, eps } = input;
  const n = x.length;
  const groups = statsCount(view);
  const m = reduceSize(view);
  const q = new Int32Array(n);
  const j = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    q[i] = statsIndexOf(view, i);
    j[i] = affineIndexOf(view, i);
  }
  const gammaOf = (i: number): number => (input.gamma == null ? 1 : input.gamma[j[i]]);
  const betaOf = (i: number): number => (input.beta == null ? 0 : input.beta[j[i]]);

  // mu = (1/M) sum x_i
  const mu = new Float64Array(groups);
  if (input.stats) mu.set(Array.from(input.stats.mu));
  else {
    for (let i = 0; i < n; i++) mu[q[i]] += x[i];
    for (let g = 0; g < groups; g++) mu[g] /= m;
  }
  // var = (1/M) sum (x_i - mu)^2
  const variance = new Float64Array(groups);
  if (input.stats) variance.set(Array.from(input.stats.var));
  else {
    for (let i = 0; i < n; i++) variance[q[i]] += (x[i] - mu[q[i]]) ** 2;
    for (let g = 0; g < groups; g++) variance[g] /= m;
  }
  // xhat_i = (x_i - mu)/sqrt(var + eps)
  const xhat = new Float64Array(n);
  for (let i = 0; i < n; i++) xhat[i] = (x[i] - mu[q[i]]) / Math.sqrt(variance[q[i]] + eps);
  // y_i = gamma*xhat_i + beta
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = gammaOf(i) * xhat[i] + betaOf(i);

  const withDy = dy !== undefined;
  const size = (k: number): number => (withDy ? k : 0);
  const dbeta = new Float64Array(size(affineSize(view)));
  const dgamma = new Float64Array(size(affineSize(view)));
  const dxhat = new Float64Array(size(n));
  const dvar = new Float64Array(size(groups));
  const dmuVarTerm = new Float64Array(size(groups));
  const dmu = new Float64Array(size(groups));
  const dxTerm1 = new Float64Array(size(n));
  const dxTerm2 = new Float64Array(size(n));
  const dxTerm3 = new Float64Array(size(n));
  const dx = new Float64Array(size(n));
  if (withDy) {
    const batchStats = input.batchStats ?? !input.stats;
    // dL/dbeta = sum dy_i ; dL/dgamma = sum dy_i*xhat_i
    for (let i = 0; i < n; i++) {
      dbeta[j[i]] += dy[i];
      dgamma[j[i]] += dy[i] * xhat[i];
    }
    // dL/dxhat_i = dy_i*gamma
    for (let i = 0; i < n; i++) dxhat[i] = dy[i] * gammaOf(i);
    // dL/dvar = sum dxhat_i*(x_i - mu)*(-1/2)*(var + eps)^(-3/2)
    for (let i = 0; i < n; i++) {
      dvar[q[i]] += dxhat[i] * (x[i] - mu[q[i]]) * -0.5 * (variance[q[i]] + eps) ** -1.5;
    }
    // dL/dmu = sum dxhat_i*(-1/sqrt(var + eps)) + dL/dvar*sum(-2(x_i - mu))/M
    const sumMinus2Centered = new Float64Array(groups);
    for (let i = 0; i < n; i++) {
      dmu[q[i]] += dxhat[i] * (-1 / Math.sqrt(variance[q[i]] + eps));
      sumMinus2Centered[q[i]] += -2 * (x[i] - mu[q[i]]);
    }
    for (let g = 0; g < groups; g++) {
      dmuVarTerm[g] = (dvar[g] * sumMinus2Centered[g]) / m;
      dmu[g] += dmuVarTerm[g];
    }
    // dL/dx_i = dxhat_i/sqrt(var + eps) + dL/dvar*2(x_i - mu)/M + dL/dmu/M  (terms 2, 3 vanish for constant stats)
    for (let i = 0; i < n; i++) {
      dxTerm1[i] = dxhat[i] / Math.sqrt(variance[q[i]] + eps);
      dxTerm2[i] = batchStats ? (dvar[q[i]] * 2 * (x[i] - mu[q[i]])) / m : 0;
      dxTerm3[i] = batchStats ? dmu[q[i]] / m : 0;
      dx[i] = dxTerm1[i] + dxTerm2[i] + dxTerm3[i];
    }
  }
  return { m, mu, var: variance, xhat, y, dbeta, dgamma, dxhat, dvar, dmuVarTerm, dmu, dxTerm1, dxTerm2, dxTerm3, dx };
}
