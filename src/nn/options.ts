/** Option checks shared by every normalization layer: each bad option is a typed error naming what came. */
import type { Layout } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import type { BackendName } from '../kernels/contract.js';
import { checkBackendDtype, defaultBackend, resolveBackend } from '../kernels/index.js';
import type { DType } from '../core/float.js';
import { describeValue, maxElements } from '../tensor.js';
import { typedArrayTag } from '../core/typed.js';

/**
 * What happens when a batch's statistics are not finite (NaN or Inf in the input):
 * 'propagate' (PyTorch: NaN flows into the output and the running statistics),
 * 'skip-update' (the output still propagates NaN, the running statistics and counter are left as they were),
 * 'throw' (a NormkitError with code 'non-finite'; nothing changes).
 */
export type NonFinitePolicy = 'propagate' | 'skip-update' | 'throw';

export interface CommonOptions {
  /** Added to the variance before the square root; must be > 0. Default 1e-5. */
  eps?: number;
  /** Storage and compute type of outputs and parameters. Default 'float32'. */
  dtype?: DType;
  /** Kernel backend. Default: the fastest available. */
  backend?: BackendName;
  /** Non-finite batch statistics policy. Default 'propagate'. */
  nonFinite?: NonFinitePolicy;
}

export interface ResolvedOptions {
  readonly eps: number;
  readonly dtype: DType;
  readonly backend: BackendName;
  readonly nonFinite: NonFinitePolicy;
}

const describe = describeValue;

/** The option keys every normalization layer takes. */
export const commonKeys = ['eps', 'dtype', 'backend', 'nonFinite'] as const;

/** Edit distance of two short strings (for "did you mean"). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

/**
 * A layer's options object, checked: undefined means none; anything but a plain object, and any key the
 * layer does not take, is an error (PyTorch rejects unexpected keyword arguments too).
 */
export function readOptions(name: string, options: unknown, keys: readonly string[]): Readonly<Record<string, unknown>> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options) || typedArrayTag(options) !== undefined) {
    throw new NormkitError('option', `${name}: expected options as an object, got ${describe(options)}`);
  }
  const given: Readonly<Record<string, unknown>> = { ...options };
  for (const key of Object.keys(given)) {
    if (keys.includes(key)) continue;
    const near = keys.filter((k) => distance(k.toLowerCase(), key.toLowerCase()) <= 2);
    const hint = near.length > 0 ? ` (did you mean '${near[0]}'?)` : '';
    throw new NormkitError('option', `${name}: unexpected option '${key}'${hint}; ${name} takes ${keys.join(', ')}`);
  }
  return given;
}

export function resolveCommon(name: string, options: Readonly<Record<string, unknown>>): ResolvedOptions {
  const { eps = 1e-5, dtype = 'float32', backend = defaultBackend(), nonFinite = 'propagate' } = options;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0) {
    throw new NormkitError('option', `${name}: eps must be a finite number > 0, got ${describe(eps)}`);
  }
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new NormkitError('option', `${name}: dtype must be 'float32' or 'float64', got ${describe(dtype)}`);
  }
  const resolved = resolveBackend(backend, name);
  checkBackendDtype(resolved, dtype, name);
  if (nonFinite !== 'propagate' && nonFinite !== 'skip-update' && nonFinite !== 'throw') {
    throw new NormkitError(
      'option',
      `${name}: nonFinite must be 'propagate', 'skip-update' or 'throw', got ${describe(nonFinite)}`,
    );
  }
  return { eps, dtype, backend: resolved, nonFinite };
}

export function checkMomentum(name: string, momentum: unknown, allowNull: boolean): number | null {
  if (momentum === null && allowNull) return null;
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    const expected = allowNull ? 'a number in [0, 1] or null' : 'a number in [0, 1]';
    throw new NormkitError('option', `${name}: momentum must be ${expected}, got ${describe(momentum)}`);
  }
  return momentum;
}

export function checkPositiveInteger(name: string, what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new NormkitError('option', `${name}: ${what} must be a positive integer, got ${describe(value)}`);
  }
  if (value > maxElements) throw new NormkitError('size', `${name}: ${what} must be at most ${maxElements}, got ${value}`);
  return value;
}

export function checkBoolean(name: string, what: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw new NormkitError('option', `${name}: ${what} must be true or false, got ${describe(value)}`);
  }
  return value;
}

export function checkLayout(name: string, value: unknown): Layout {
  if (value !== 'channels-first' && value !== 'channels-last') {
    throw new NormkitError('option', `${name}: layout must be 'channels-first' or 'channels-last', got ${describe(value)}`);
  }
  return value;
}
