/** Dense row-major tensors over float typed arrays, and the shape helpers every layer shares. */
import { checkArrayBytes } from './core/limits.js';
import { checkUsable } from './core/memory.js';
import type { DType, FloatArray } from './core/float.js';
import { numel } from './core/float.js';
import { plainView, typedArrayTag } from './core/typed.js';
import { NormkitError } from './errors.js';

export type { DType, FloatArray } from './core/float.js';
export { dtypeOf, numel } from './core/float.js';

export interface Tensor<T extends FloatArray = FloatArray> {
  readonly data: T;
  readonly shape: readonly number[];
}

export function allocate(dtype: DType, length: number): FloatArray {
  checkArrayBytes('allocate', length, dtype);
  try {
    return dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
  } catch (error) {
    // a length past the typed-array limit, or memory the engine cannot give
    if (error instanceof RangeError) throw new NormkitError('size', `cannot allocate ${length} ${dtype} values: ${error.message}`);
    throw error;
  }
}

/**
 * A tensor normkit made: dispose() (or `using`, through Disposable's [Symbol.dispose]) returns its memory now
 * where it lives in a backend's memory; a no-op otherwise.
 */
export interface OwnedTensor<T extends FloatArray = FloatArray> extends Tensor<T>, Disposable {
  dispose(): void;
}

export function ownedTensor<T extends FloatArray>(data: T, shape: readonly number[], release: () => void = () => undefined): OwnedTensor<T> {
  return { data, shape, dispose: release, [Symbol.dispose]: release };
}

/** Where new tensors live by default: the wasm backend installs its memory (kernels/index.ts); null: plain arrays. */
type Storage = (dtype: DType, shape: readonly number[]) => OwnedTensor | null;
let storage: Storage | null = null;

export function setTensorStorage(next: Storage | null): void {
  storage = next;
}

/** A new tensor in the default storage for the caller to fill: write every value (a block of wasm memory is not zeroed). */
export function emptyTensor(dtype: DType, shape: readonly number[]): OwnedTensor {
  checkArrayBytes('tensor', numel(shape), dtype);
  return storage?.(dtype, shape) ?? ownedTensor(allocate(dtype, numel(shape)), [...shape]);
}

/** A tensor of the given dtype holding `values`, checked against `shape` (in wasm memory when the wasm backend runs here). */
export function tensor(values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'float32'): OwnedTensor {
  checkDType('tensor', dtype);
  // a JavaScript caller can pass anything: check as unknown
  const given: unknown = values;
  if (typeof given !== 'object' || given === null || !('length' in given) || typeof given.length !== 'number') {
    throw new NormkitError('dtype', `tensor: expected values as an array of numbers or a typed array, got ${describeValue(given)}`);
  }
  const dims = readShape(shape, 'tensor');
  const n = numel(dims);
  if (values.length !== n) throw new NormkitError('length', `tensor: ${values.length} values do not match shape ${formatShape(dims)} (${n} elements)`);
  const t = emptyTensor(dtype, dims);
  t.data.set(values);
  return t;
}

/** Throws an 'option' NormkitError unless `dtype` is 'float32' or 'float64'. */
export function checkDType(who: string, dtype: unknown): DType {
  if (dtype !== 'float32' && dtype !== 'float64') throw new NormkitError('option', `${who}: dtype must be 'float32' or 'float64', got ${describeValue(dtype)}`);
  return dtype;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** The most elements a tensor or parameter may have: the largest typed array there is. */
export const maxElements = 2 ** 32 - 1;

/**
 * `t` as normkit reads it: a plain view of its float data (see core/typed.ts) and a copy of its shape,
 * after checking that `t` is a tensor whose data length is the product of a shape of non-negative integers.
 */
export function readTensor(t: unknown, what: string): Tensor {
  if (typeof t !== 'object' || t === null) {
    throw new NormkitError('shape', `${what}: expected a tensor { data, shape }, got ${describeValue(t)}`);
  }
  const { data: rawData, shape }: { data?: unknown; shape?: unknown } = t;
  const data = plainView(rawData);
  if (data === null) {
    const tag = typedArrayTag(rawData);
    throw new NormkitError('dtype', `${what}: expected data as Float32Array or Float64Array, got ${tag ?? describeValue(rawData)}`);
  }
  checkUsable(data, what);
  const checked = readShape(shape, what);
  const n = numel(checked);
  if (data.length !== n) {
    throw new NormkitError('length', `${what}: data length ${data.length} does not match shape ${formatShape(checked)} (${n} elements)`);
  }
  return { data, shape: checked };
}

/** A copy of a caller's shape after checking it is an array of non-negative safe integers. */
export function readShape(shape: unknown, what: string): number[] {
  if (!Array.isArray(shape)) {
    throw new NormkitError('shape', `${what}: expected a shape as an array of non-negative integers, got ${describeValue(shape)}`);
  }
  const dims: unknown[] = shape;
  // sized at once (a pushed array reserves room for 16), each value read once
  const rank = dims.length;
  const copy = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const d = dims[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new NormkitError('shape', `${what}: expected a shape of non-negative integers, got ${describeValue(d)} at dimension ${i}`);
    }
    copy[i] = d;
  }
  return copy;
}

/** Throws unless `t` has float data whose length is the product of a shape of non-negative integers. */
export function checkTensor(t: Tensor, what: string): void {
  readTensor(t, what);
}

/** A short description of what a caller passed: its type, or the value itself where it is short. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return value.length <= 40 ? `'${value}'` : 'a string';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === undefined) return String(value);
  if (typeof value === 'object') return typedArrayTag(value) ?? describeObject(value);
  return typeof value;
}

/** An object's constructor name; one named like a typed array that is none is a Proxy or a look-alike, said so. */
function describeObject(value: object): string {
  let name: string;
  try {
    const ctor: unknown = Object.getPrototypeOf(value) === null ? undefined : Reflect.get(value, 'constructor');
    const ctorName: unknown = typeof ctor === 'function' ? ctor.name : undefined;
    name = typeof ctorName === 'string' && ctorName !== '' ? ctorName : 'Object';
  } catch {
    return 'an object whose prototype cannot be read (a revoked Proxy?)';
  }
  const posing = /^(Big)?(Int|Uint|Float)(8|16|32|64)(Clamped)?Array$/.test(name);
  return posing ? `an object posing as a ${name} (a Proxy or a look-alike, not a real typed array: pass the array itself)` : name;
}
