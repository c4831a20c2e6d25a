/** The element types every array in normkit holds, and the element count of a shape: the bottom of the house. */

export type FloatArray = Float32Array | Float64Array;
export type DType = 'float32' | 'float64';

/** Product of the dimensions (1 for a scalar shape). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function dtypeOf(data: FloatArray): DType {
  return data instanceof Float64Array ? 'float64' : 'float32';
}

/** Whether every value is finite (no NaN, no ±Infinity). */
export function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

/** Whether every value stays finite once rounded to float32 (as a Float32Array would store it). */
export function allFiniteF32(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(Math.fround(values[i]))) return false;
  return true;
}
