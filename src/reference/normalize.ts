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
 * Method: every node is computed in double-double arithmetic (dd.ts, ~106 bits) and rounded to float64
 * once, when it is stored, so each returned value is the exact value of its node rounded to float64
 * (within an ulp or two) however much the nodes cancel (mean 1e4 with std 1e-2, two values per group).
 * Sums and squares run on values scaled by a power of two (exact), so they overflow only where the
 * statistic itself does.
 *
 * References: S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by
 * Reducing Internal Covariate Shift", ICML 2015.
 */
import type { NormView } from '../core/layout.js';
import type { DD } from './dd.js';
import { add, div, fromNumber, mul, scale, sqrt, sub } from './dd.js';
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
  /**
   * Given statistics, one per statistics group (eval: running statistics); omit to compute the batch's.
   * mu null: the batch's own mean, exact (a backward from cached statistics whose mean was rounded).
   */
  readonly stats?: { readonly mu: ArrayLike<number> | null; readonly var: ArrayLike<number> } | null;
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

/** 2^-e for the largest finite |value| 2^e (1 when there is none): a scaling that cannot overflow a sum of M squares. */
function pow2Scale(values: readonly DD[]): number {
  let max = 0;
  for (const v of values) if (Number.isFinite(v.hi)) max = Math.max(max, Math.abs(v.hi));
  return max === 0 ? 1 : 2 ** -Math.floor(Math.log2(max));
}

/** (1/M) sum_i v_i^power, every term scaled by the power of two p first (exact) and the mean scaled back. */
function scaledMean(values: readonly DD[], p: number, power: 1 | 2, m: DD): DD {
  let sum = fromNumber(0);
  for (const v of values) {
    const s = scale(v, p);
    sum = add(sum, power === 1 ? s : mul(s, s));
  }
  const mean = div(sum, m);
  return power === 1 ? scale(mean, 1 / p) : scale(scale(mean, 1 / p), 1 / p);
}

function sumOf(values: readonly DD[]): DD {
  let sum = fromNumber(0);
  for (const v of values) sum = add(sum, v);
  return sum;
}

const hiOf = (values: readonly DD[]): Float64Array => Float64Array.from(values, (v) => v.hi);

export function referenceNorm(input: ReferenceInput): ReferenceResult {
  const { x, dy, view, eps } = input;
  const n = x.length;
  const groups = statsCount(view);
  const m = reduceSize(view);
  const mDD = fromNumber(m);
  const q = new Int32Array(n);
  const j = new Int32Array(n);
  const members: number[][] = Array.from({ length: groups }, () => []);
  for (let i = 0; i < n; i++) {
    q[i] = statsIndexOf(view, i);
    j[i] = affineIndexOf(view, i);
    members[q[i]].push(i);
  }
  const gammaOf = (i: number): number => (input.gamma == null ? 1 : input.gamma[j[i]]);
  const betaOf = (i: number): number => (input.beta == null ? 0 : input.beta[j[i]]);
  const xDD = Array.from({ length: n }, (_, i) => fromNumber(x[i]));
  const ofGroup = (values: readonly DD[], g: number): DD[] => members[g].map((i) => values[i]);

  // mu = (1/M) sum x_i
  const mu: DD[] = [];
  for (let g = 0; g < groups; g++) {
    if (input.stats?.mu) mu.push(fromNumber(input.stats.mu[g]));
    else {
      const xs = ofGroup(xDD, g);
      mu.push(scaledMean(xs, pow2Scale(xs), 1, mDD));
    }
  }
  // x_i - mu, the centred value every later node uses
  const centred = xDD.map((v, i) => sub(v, mu[q[i]]));
  // var = (1/M) sum (x_i - mu)^2
  const variance: DD[] = [];
  for (let g = 0; g < groups; g++) {
    if (input.stats) variance.push(fromNumber(input.stats.var[g]));
    else {
      const ds = ofGroup(centred, g);
      variance.push(scaledMean(ds, pow2Scale(ds), 2, mDD));
    }
  }
  // sqrt(var + eps), once per group
  const root = variance.map((v) => sqrt(add(v, fromNumber(eps))));
  // xhat_i = (x_i - mu)/sqrt(var + eps)
  const xhat = centred.map((d, i) => div(d, root[q[i]]));
  // y_i = gamma*xhat_i + beta
  const y = xhat.map((h, i) => add(scale(h, gammaOf(i)), fromNumber(betaOf(i))));

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
    const dyDD = Array.from({ length: n }, (_, i) => fromNumber(dy[i]));
    // dL/dbeta = sum dy_i ; dL/dgamma = sum dy_i*xhat_i
    const sumDbeta: DD[] = Array.from({ length: affineSize(view) }, () => fromNumber(0));
    const sumDgamma = [...sumDbeta];
    for (let i = 0; i < n; i++) {
      sumDbeta[j[i]] = add(sumDbeta[j[i]], dyDD[i]);
      sumDgamma[j[i]] = add(sumDgamma[j[i]], mul(dyDD[i], xhat[i]));
    }
    dbeta.set(hiOf(sumDbeta));
    dgamma.set(hiOf(sumDgamma));
    // dL/dxhat_i = dy_i*gamma
    const dxhatDD = dyDD.map((d, i) => scale(d, gammaOf(i)));
    dxhat.set(hiOf(dxhatDD));
    const rstd = root.map((r) => div(fromNumber(1), r));
    const dvarDD: DD[] = [];
    const dmuDD: DD[] = [];
    for (let g = 0; g < groups; g++) {
      const dxhats = ofGroup(dxhatDD, g);
      const ds = ofGroup(centred, g);
      // dL/dvar = sum dxhat_i*(x_i - mu) * (-1/2)*(var + eps)^(-3/2)
      const sumDxhatCentred = sumOf(dxhats.map((h, k) => mul(h, ds[k])));
      dvarDD.push(scale(mul(mul(mul(sumDxhatCentred, rstd[g]), rstd[g]), rstd[g]), -0.5)); // one factor at a time: rstd^3 alone may underflow
      // dL/dmu = sum dxhat_i*(-1/sqrt(var + eps)) + dL/dvar*sum(-2(x_i - mu))/M
      const first = mul(sumOf(dxhats), scale(rstd[g], -1));
      const varTerm = div(mul(dvarDD[g], scale(sumOf(ds), -2)), mDD);
      dmuDD.push(add(first, varTerm));
      dvar[g] = dvarDD[g].hi;
      dmuVarTerm[g] = varTerm.hi;
      dmu[g] = dmuDD[g].hi;
    }
    // dL/dx_i = dxhat_i/sqrt(var + eps) + dL/dvar*2(x_i - mu)/M + dL/dmu/M  (terms 2, 3 vanish for constant stats)
    for (let i = 0; i < n; i++) {
      const g = q[i];
      const term1 = div(dxhatDD[i], root[g]);
      const term2 = batchStats ? div(mul(dvarDD[g], scale(centred[i], 2)), mDD) : fromNumber(0);
      const term3 = batchStats ? div(dmuDD[g], mDD) : fromNumber(0);
      dxTerm1[i] = term1.hi;
      dxTerm2[i] = term2.hi;
      dxTerm3[i] = term3.hi;
      dx[i] = add(add(term1, term2), term3).hi;
    }
  }
  return { m, mu: hiOf(mu), var: hiOf(variance), xhat: hiOf(xhat), y: hiOf(y), dbeta, dgamma, dxhat, dvar, dmuVarTerm, dmu, dxTerm1, dxTerm2, dxTerm3, dx };
}
