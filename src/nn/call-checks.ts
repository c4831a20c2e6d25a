/** The checks of a layer call's arguments that do not need the layer: `{ out }` options, shapes, output aliasing. */
import { overlaps } from '../core/typed.js';
import { NormkitError } from '../errors.js';
import type { FloatArray, Tensor } from '../tensor.js';
import { describeValue, formatShape } from '../tensor.js';

/** The `{ out }` options of forward and backward, checked (a JavaScript caller can pass anything). */
export function readCallOptions(name: string, options: unknown, what: string): { out?: unknown } {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new NormkitError('option', `${name}: ${what} options must be an object like { out }, got ${describeValue(options)}`);
  }
  const given: Readonly<Record<string, unknown>> = { ...options };
  const unexpected = Object.keys(given).find((k) => k !== 'out');
  if (unexpected !== undefined) throw new NormkitError('option', `${name}: unexpected ${what} option '${unexpected}'; ${what} takes out`);
  return 'out' in given && given.out !== undefined ? { out: given.out } : {};
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A caller's output `out` (already read as a tensor of the layer's dtype): the shape of `like`, and no byte
 * shared with the call's inputs (`inputs`, named) or the layer's own arrays (`own`).
 */
export function checkOutput(name: string, out: Tensor, like: Tensor, inputs: readonly [string, FloatArray][], own: readonly FloatArray[]): void {
  if (!sameShape(out.shape, like.shape)) {
    throw new NormkitError('shape', `${name}: expected out of shape ${formatShape(like.shape)}, got ${formatShape(out.shape)}`);
  }
  for (const [what, data] of inputs) {
    if (overlaps(out.data, data)) {
      throw new NormkitError('alias', `${name}: out must not share memory with ${what} (${data === out.data ? 'the same array' : 'overlapping views of one buffer'})`);
    }
  }
  if (own.some((data) => overlaps(out.data, data))) {
    throw new NormkitError('alias', `${name}: out must not share memory with the layer's parameters, gradients or running statistics`);
  }
}
