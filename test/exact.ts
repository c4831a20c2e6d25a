// An independent exact oracle for the tests: binary fixed point on BigInt with 1400 fractional bits, so
// every float64 (subnormals aside) is held exactly and each operation errs by at most 2^-1400. It shares
// no code with src/reference (double-double): the oracle tests hold the reference to it.
import type { NormView } from '../src/core/layout.ts';
import { affineIndexOf, affineSize, reduceSize, statsCount, statsIndexOf } from '../src/core/layout.ts';

const P = 1400n;
const ONE = 1n << P;

export type Fixed = bigint;

const view64 = new DataView(new ArrayBuffer(8));

/** The float64 a exactly (a finite, |a| >= 2^-1400). */
export function fixed(a: number): Fixed {
  if (!Number.isFinite(a)) throw new Error(`fixed: ${a} is not finite`);
  if (a === 0) return 0n;
  view64.setFloat64(0, a);
  const bits = view64.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = exponent === 0 ? fraction : fraction | (1n << 52n);
  const shift = BigInt(exponent === 0 ? -1074 : exponent - 1075) + P;
  if (shift < 0n) throw new Error(`fixed: ${a} is below 2^-1400`);
  return sign * (mantissa << shift);
}

export const mul = (a: Fixed, b: Fixed): Fixed => (a * b) >> P;
export const div = (a: Fixed, b: Fixed): Fixed => (a << P) / b;

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << (BigInt(n.toString(2).length) / 2n + 1n);
  for (;;) {
    const next = (x + n / x) >> 1n;
    if (next >= x) return x;
    x = next;
  }
}

export const sqrt = (a: Fixed): Fixed => isqrt(a << P);

/** The float64 nearest to a (within an ulp: the 64-bit truncation and Number's rounding). */
export function toNumber(a: Fixed): number {
  if (a === 0n) return 0;
  const negative = a < 0n;
  const abs = negative ? -a : a;
  const extra = Math.max(0, abs.toString(2).length - 64);
  const head = Number(abs >> BigInt(extra));
  // scale by 2^(extra - P) in two steps: one power alone may overflow or underflow
  const e = extra - Number(P);
  const value = head * 2 ** Math.trunc(e / 2) * 2 ** (e - Math.trunc(e / 2));
  return negative ? -value : value;
}

export interface ExactResult {
  readonly mu: number[];
  readonly var: number[];
  readonly xhat: number[];
  readonly y: number[];
  readonly dbeta: number[];
  readonly dgamma: number[];
  readonly dvar: number[];
  readonly dmu: number[];
  readonly dx: number[];
}

/** Batch normalization forward and backward with batch statistics, every node exact, rounded at the end. */
export function exactNorm(x: ArrayLike<number>, dy: ArrayLike<number>, view: NormView, gamma: ArrayLike<number> | null, beta: ArrayLike<number> | null, eps: number): ExactResult {
  const n = x.length;
  const groups = statsCount(view);
  const m = BigInt(reduceSize(view));
  const q = Array.from({ length: n }, (_, i) => statsIndexOf(view, i));
  const j = Array.from({ length: n }, (_, i) => affineIndexOf(view, i));
  const xs = Array.from(x, fixed);
  const dys = Array.from(dy, fixed);
  const g = (i: number): Fixed => (gamma === null ? ONE : fixed(gamma[j[i]]));
  const b = (i: number): Fixed => (beta === null ? 0n : fixed(beta[j[i]]));
  const perGroup = (): Fixed[] => new Array<Fixed>(groups).fill(0n);
  const sumX = perGroup();
  xs.forEach((v, i) => (sumX[q[i]] += v));
  const mu = sumX.map((s) => s / m);
  const d = xs.map((v, i) => v - mu[q[i]]);
  const sumSq = perGroup();
  d.forEach((v, i) => (sumSq[q[i]] += mul(v, v)));
  const variance = sumSq.map((s) => s / m);
  const root = variance.map((v) => sqrt(v + fixed(eps)));
  const xhat = d.map((v, i) => div(v, root[q[i]]));
  const y = xhat.map((h, i) => mul(g(i), h) + b(i));
  const dbeta = new Array<Fixed>(affineSize(view)).fill(0n);
  const dgamma = [...dbeta];
  dys.forEach((v, i) => {
    dbeta[j[i]] += v;
    dgamma[j[i]] += mul(v, xhat[i]);
  });
  const dxhat = dys.map((v, i) => mul(v, g(i)));
  // dvar = sum dxhat*(x - mu) * (-1/2)(var + eps)^(-3/2); dmu = -sum dxhat/sqrt(var + eps) (sum(x - mu) = 0 exactly)
  const sumDxhatD = perGroup();
  const sumDxhat = perGroup();
  dxhat.forEach((v, i) => {
    sumDxhatD[q[i]] += mul(v, d[i]);
    sumDxhat[q[i]] += v;
  });
  const dvar = sumDxhatD.map((s, k) => -div(s, 2n * mul(root[k], mul(root[k], root[k]))));
  const dmu = sumDxhat.map((s, k) => -div(s, root[k]));
  const dx = dxhat.map((v, i) => div(v, root[q[i]]) + (2n * mul(dvar[q[i]], d[i])) / m + dmu[q[i]] / m);
  const out = (a: Fixed[]): number[] => a.map(toNumber);
  return { mu: out(mu), var: out(variance), xhat: out(xhat), y: out(y), dbeta: out(dbeta), dgamma: out(dgamma), dvar: out(dvar), dmu: out(dmu), dx: out(dx) };
}
