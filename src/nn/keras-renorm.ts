/**
 * Keras 3's Batch Renormalization (`BatchNormalization(renorm=True)`), as an option of normkit's renorm:
 * r and d come from their own moving statistics, `renorm_mean` and `renorm_stddev` (updated with
 * `renorm_momentum`), apart from the inference statistics `moving_mean` and `moving_stddev` (updated with
 * `momentum`); both momenta weigh the OLD value (Keras's convention, PyTorch's weighs the new one).
 *
 * Method, per channel, with the batch's mean mu_B and biased variance var_B (Keras's order, one training step):
 *   sigma_B = sqrt(var_B + eps),  s = max(renorm_stddev, sqrt(eps))
 *   r = clip(sigma_B / s, rmin, rmax),  d = clip((mu_B - renorm_mean) / s, -dmax, dmax)   (constants in backward)
 *   y = gamma*(r*(x - mu_B)/sigma_B + d) + beta
 *   renorm_mean   = renorm_momentum*renorm_mean   + (1 - renorm_momentum)*mu_B
 *   renorm_stddev = renorm_momentum*renorm_stddev + (1 - renorm_momentum)*sigma_B
 *   moving_mean   = momentum*moving_mean   + (1 - momentum)*mu_B
 *   moving_stddev = momentum*moving_stddev + (1 - momentum)*sigma_B
 *   moving_variance = max(moving_stddev^2 - eps, 0)
 * Eval is BatchNorm eval with moving_mean and moving_variance.
 *
 * References: Ioffe 2017, Batch Renormalization (arXiv:1702.03275); keras/src/layers/normalization/batch_normalization.py
 * (`_renorm_correction_and_moments`, `_update_renorm_statistics`), checked step by step against fixtures/keras-renorm.json.
 */
import { NormkitError } from '../errors.js';
import type { FloatArray } from '../tensor.js';
import { describeValue } from '../tensor.js';

export interface KerasRenormOptions {
  readonly convention: 'keras';
  /** Lower clip of r, in [0, 1] (Keras's `renorm_clipping.rmin`; absent there: 0). Default 0. */
  readonly rmin?: number;
  /** Upper clip of r, >= 1 (`rmax`; absent there: inf). Default Infinity. */
  readonly rmax?: number;
  /** Clip of |d|, >= 0 (`dmax`; absent there: inf). Default Infinity. */
  readonly dmax?: number;
  /** Keras's `momentum` of moving_mean and moving_stddev, weighing the old value. Default 0.99. */
  readonly momentum?: number;
  /** Keras's `renorm_momentum` of renorm_mean and renorm_stddev, weighing the old value. Default 0.99. */
  readonly renormMomentum?: number;
}

/** Keras renorm options with every default filled in. */
export interface KerasRenorm {
  readonly convention: 'keras';
  readonly rmin: number;
  readonly rmax: number;
  readonly dmax: number;
  readonly momentum: number;
  readonly renormMomentum: number;
}

const kerasKeys = ['convention', 'rmin', 'rmax', 'dmax', 'momentum', 'renormMomentum'];

/** Checks Keras renorm options given as unknown; every key and range is named in the error. */
export function checkKerasRenorm(name: string, value: object): KerasRenorm {
  const given: Readonly<Record<string, unknown>> = { ...value };
  const fail = (why: string): never => {
    throw new NormkitError('option', `${name}: renorm { convention: 'keras' }: ${why}, got ${describeValue(value)}`);
  };
  const unexpected = Object.keys(given).find((k) => !kerasKeys.includes(k));
  if (unexpected !== undefined) fail(`unexpected key '${unexpected}' (it takes ${kerasKeys.join(', ')})`);
  const read = (key: string, fallback: number, ok: (v: number) => boolean, range: string): number => {
    const v = given[key] ?? fallback;
    if (typeof v !== 'number' || Number.isNaN(v) || !ok(v)) return fail(`${key} must be a number ${range}`);
    return v;
  };
  const rmin = read('rmin', 0, (v) => v >= 0 && v <= 1, 'in [0, 1]');
  const rmax = read('rmax', Infinity, (v) => v >= 1, '>= 1 (Infinity for no clip)');
  const dmax = read('dmax', Infinity, (v) => v >= 0, '>= 0 (Infinity for no clip)');
  const momentum = read('momentum', 0.99, (v) => v >= 0 && v <= 1, 'in [0, 1] (Keras convention: the weight of the old value)');
  const renormMomentum = read('renormMomentum', 0.99, (v) => v >= 0 && v <= 1, 'in [0, 1] (Keras convention: the weight of the old value)');
  return { convention: 'keras', rmin, rmax, dmax, momentum, renormMomentum };
}

/** The variables Keras renorm keeps beside moving_mean and moving_variance (the layer's running statistics). */
export interface KerasRenormState {
  readonly movingStddev: FloatArray;
  readonly renormMean: FloatArray;
  readonly renormStddev: FloatArray;
}

/** Every Keras variable after a step, in float64, for the layer to commit or drop. */
export interface KerasRenormNext {
  readonly movingMean: Float64Array;
  readonly movingVariance: Float64Array;
  readonly movingStddev: Float64Array;
  readonly renormMean: Float64Array;
  readonly renormStddev: Float64Array;
}

const clip = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);

/** r and d per channel from a batch's mean and rstd (= 1/sigma_B) and renorm_mean/renorm_stddev before the step. */
export function kerasRenormFactors(options: KerasRenorm, mean: Float64Array, rstd: Float64Array, state: KerasRenormNext, eps: number): { r: Float64Array; d: Float64Array } {
  const n = mean.length;
  const r = new Float64Array(n);
  const d = new Float64Array(n);
  const floor = Math.sqrt(eps);
  for (let g = 0; g < n; g++) {
    // Keras floors the renorm stddev at sqrt(eps) ("avoid divide by zero early on in training")
    const s = Math.max(state.renormStddev[g], floor);
    r[g] = clip(1 / rstd[g] / s, options.rmin, options.rmax);
    d[g] = clip((mean[g] - state.renormMean[g]) / s, -options.dmax, options.dmax);
  }
  return { r, d };
}

/** The variables as float64 copies (the starting point of a step). */
export function kerasRenormStart(movingMean: ArrayLike<number>, movingVariance: ArrayLike<number>, state: KerasRenormState): KerasRenormNext {
  return {
    movingMean: Float64Array.from(movingMean),
    movingVariance: Float64Array.from(movingVariance),
    movingStddev: Float64Array.from(state.movingStddev),
    renormMean: Float64Array.from(state.renormMean),
    renormStddev: Float64Array.from(state.renormStddev),
  };
}

/** Keras's `_update_renorm_statistics` for one batch (biased variance `variance`), in place on `next`. */
export function kerasRenormUpdate(options: KerasRenorm, next: KerasRenormNext, mean: Float64Array, variance: Float64Array, eps: number): void {
  const { momentum: m, renormMomentum: rm } = options;
  for (let g = 0; g < mean.length; g++) {
    const sigma = Math.sqrt(variance[g] + eps);
    next.renormMean[g] = next.renormMean[g] * rm + mean[g] * (1 - rm);
    next.renormStddev[g] = next.renormStddev[g] * rm + sigma * (1 - rm);
    next.movingMean[g] = next.movingMean[g] * m + mean[g] * (1 - m);
    const stddev = next.movingStddev[g] * m + sigma * (1 - m);
    next.movingStddev[g] = stddev;
    // Keras: relu(stddev^2 - eps), in case rounding takes it below zero
    next.movingVariance[g] = Math.max(stddev * stddev - eps, 0);
  }
}
