/** Dense row-major tensors over float typed arrays, and the shape helpers every layer shares. */
import { NormkitError } from './errors.js';

export type FloatArray = Float32Array | Float64Array;
export type DType = 'float32' | 'float64';

export interface Tensor<T extends FloatArray = FloatArray> {
  readonly data: T;
  readonly shape: readonly number[];
}

/** Product of the dimensions (1 for a scalar shape). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function dtypeOf(data: FloatArray): DType {
  return data instanceof Float64Array ? 'float64' : 'float32';
}

export function allocate(dtype: DType, length: number): FloatArray {
  return dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
}

/** A tensor of the given dtype holding `values`, checked against `shape`. */
export function tensor(values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'float32'): Tensor {
  const data = allocate(dtype, values.length);
  data.set(values);
  const t = { data, shape: [...shape] };
  checkTensor(t, 'tensor');
  return t;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Throws unless `t` has float data whose length is the product of a shape of non-negative integers. */
export function checkTensor(t: Tensor, what: string): void {
  if (!(t.data instanceof Float32Array) && !(t.data instanceof Float64Array)) {
    throw new NormkitError('dtype', `${what}: expected data as Float32Array or Float64Array, got ${describeValue(t.data)}`);
  }
  if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new NormkitError('shape', `${what}: expected a shape of non-negative integers, got ${String(t.shape)}`);
  }
  const n = numel(t.shape);
  if (t.data.length !== n) {
    throw new NormkitError(
      'length',
      `${what}: data length ${t.data.length} does not match shape ${formatShape(t.shape)} (${n} elements)`,
    );
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor.name;
  return typeof value;
}
