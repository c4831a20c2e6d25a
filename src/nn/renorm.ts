/**
 * Batch Renormalization (Ioffe 2017, Algorithm 1): with sigma_B = sqrt(var_B + eps) and
 * sigma = sqrt(running_var + eps), r = clip(sigma_B/sigma, 1/rmax, rmax) and
 * d = clip((mu_B - running_mean)/sigma, -dmax, dmax); xhat = (x - mu_B)/sigma_B*r + d.
 * r and d are constants in backward, so y = x*(gamma*r*rstd_B) + ... is BatchNorm with weight gamma*r
 * and bias beta + gamma*d, and dgamma = r*sum(dy*xhat_B) + d*sum(dy).
 */
import { NormkitError } from '../errors.js';
import type { FloatArray } from '../core/float.js';

export interface RenormOptions {
  /** Upper clip of r (>= 1); rmax = 1 with dmax = 0 is BatchNorm exactly. */
  readonly rmax: number;
  /** Clip of |d| (>= 0). */
  readonly dmax: number;
}

export interface RenormFactors {
  readonly r: Float64Array;
  readonly d: Float64Array;
}

/** Checks renorm options as unknown (JavaScript callers and fixtures can pass anything); null switches it off. */
export function checkRenorm(name: string, value: unknown): RenormOptions | null {
  if (value === null || value === undefined) return null;
  const fail = (): never => {
    throw new NormkitError('option', `${name}: renorm must be { rmax: number >= 1, dmax: number >= 0 } or null, got ${JSON.stringify(value)}`);
  };
  if (typeof value !== 'object' || !('rmax' in value) || !('dmax' in value)) return fail();
  const { rmax, dmax } = value;
  if (typeof rmax !== 'number' || typeof dmax !== 'number' || !(rmax >= 1) || !(dmax >= 0) || !Number.isFinite(rmax) || !Number.isFinite(dmax)) return fail();
  return { rmax, dmax };
}

const clip = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);

/** r and d per channel from one batch's mean and rstd (= 1/sigma_B) and the running statistics before the step. */
export function renormFactors(
  options: RenormOptions,
  mean: Float64Array,
  rstd: Float64Array,
  runningMean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  eps: number,
): RenormFactors {
  const n = mean.length;
  const r = new Float64Array(n);
  const d = new Float64Array(n);
  for (let g = 0; g < n; g++) {
    const sigma = Math.sqrt(runningVar[g] + eps);
    r[g] = clip(1 / rstd[g] / sigma, 1 / options.rmax, options.rmax);
    d[g] = clip((mean[g] - runningMean[g]) / sigma, -options.dmax, options.dmax);
  }
  return { r, d };
}

/** The BatchNorm affine that realises renorm: weight gamma*r, bias beta + gamma*d (gamma 1, beta 0 without affine). */
export function renormAffine(
  factors: RenormFactors,
  weight: FloatArray | null,
  bias: FloatArray | null,
  allocate: (n: number) => FloatArray,
): { weight: FloatArray; bias: FloatArray } {
  const { r, d } = factors;
  const w = allocate(r.length);
  const b = allocate(r.length);
  for (let g = 0; g < r.length; g++) {
    const gamma = weight === null ? 1 : weight[g];
    w[g] = gamma * r[g];
    b[g] = (bias === null ? 0 : bias[g]) + gamma * d[g];
  }
  return { weight: w, bias: b };
}
