/**
 * Gradient check by central differences in float64 (PyTorch's gradcheck rule): for the loss
 * L = sum(y*dy) with a random dy, every analytical gradient a must satisfy
 * |a - n| <= atol + rtol*|n|, where n = (L(t + eps) - L(t - eps))/(2 eps).
 */
import { NormkitError } from './errors.js';
import type { Module } from './nn/module.js';
import { Random } from './random.js';
import type { FloatArray, Tensor } from './tensor.js';
import { checkTensor, formatShape } from './tensor.js';

export interface GradcheckOptions {
  /** Finite-difference step. Default 1e-6. */
  readonly eps?: number;
  readonly atol?: number;
  readonly rtol?: number;
  /** Seed of the random dy. Default 0. */
  readonly seed?: number;
  /** A given dL/dy instead of the random one (same length as x). */
  readonly dy?: ArrayLike<number>;
}

export interface GradcheckEntry {
  /** 'x', or the parameter's name ('weight', 'bias'). */
  readonly input: string;
  readonly count: number;
  readonly maxAbsError: number;
  /** max |a - n| / (atol + rtol*|n|): at most 1 passes. */
  readonly worstRatio: number;
  readonly ok: boolean;
  /** The backward pass's gradient and the central differences, element by element. */
  readonly analytical: Float64Array;
  readonly numerical: Float64Array;
}

export interface GradcheckResult {
  readonly module: string;
  readonly shape: readonly number[];
  readonly ok: boolean;
  readonly entries: readonly GradcheckEntry[];
}

function dot(a: FloatArray, b: FloatArray): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

function compare(input: string, analytical: FloatArray, numerical: Float64Array, atol: number, rtol: number): GradcheckEntry {
  let maxAbsError = 0;
  let worstRatio = 0;
  for (let i = 0; i < numerical.length; i++) {
    const diff = Math.abs(analytical[i] - numerical[i]);
    maxAbsError = Math.max(maxAbsError, diff);
    worstRatio = Math.max(worstRatio, Number.isNaN(diff) ? Infinity : diff / (atol + rtol * Math.abs(numerical[i])));
  }
  return { input, count: numerical.length, maxAbsError, worstRatio, ok: worstRatio <= 1, analytical: Float64Array.from(analytical), numerical };
}

/** Checks dx and every parameter gradient of a float64 module at x; the module's state is restored after. */
export function gradcheck(module: Module, x: Tensor, options: GradcheckOptions = {}): GradcheckResult {
  const { eps = 1e-6, atol = 1e-5, rtol = 1e-3, seed = 0 } = options;
  checkTensor(x, 'gradcheck input');
  if (!(x.data instanceof Float64Array)) {
    throw new NormkitError('dtype', `gradcheck needs float64 input and module (got ${formatShape(x.shape)} float32)`);
  }
  const saved = module.stateDict();
  const params = module.parameters();
  const savedGrads = params.map((p) => p.grad.slice());
  try {
    module.zeroGrad();
    const y = module.forward(x);
    if (options.dy !== undefined && options.dy.length !== y.data.length) {
      throw new NormkitError('grad-shape', `gradcheck: dy has ${options.dy.length} values for an output of ${y.data.length}`);
    }
    const dy = options.dy === undefined ? new Random(seed).normals(y.data.length) : Float64Array.from(options.dy);
    const dxAnalytical = module.backward({ data: dy, shape: y.shape }).data;
    const grads = params.map((p) => p.grad.slice());
    const probe = { data: x.data.slice(), shape: x.shape };
    const loss = (): number => dot(module.forward(probe).data, dy);
    // perturbs values[i] in place by +-eps and restores it exactly
    const numerical = (values: FloatArray): Float64Array => {
      const out = new Float64Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const keep = values[i];
        values[i] = keep + eps;
        const plus = loss();
        values[i] = keep - eps;
        const minus = loss();
        values[i] = keep;
        out[i] = (plus - minus) / (2 * eps);
      }
      return out;
    };
    const entries = [compare('x', dxAnalytical, numerical(probe.data), atol, rtol)];
    params.forEach((p, k) => {
      entries.push(compare(p.name, grads[k], numerical(p.data), atol, rtol));
    });
    return { module: module.name, shape: [...x.shape], ok: entries.every((e) => e.ok), entries };
  } finally {
    module.loadStateDict(saved);
    params.forEach((p, k) => { p.grad.set(savedGrads[k]); });
  }
}
