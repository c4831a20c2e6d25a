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

/** What a typed array really is, read through the intrinsic getters (a subclass may lie in `length`). */
export interface FloatArrayInfo {
  readonly dtype: DType;
  readonly length: number;
  readonly byteOffset: number;
  readonly byteLength: number;
}

const typedArrayProto: object = Object.getPrototypeOf(Int8Array.prototype) as object;
/** %TypedArray%.prototype's own getter as a function of the receiver, whatever getters a subclass defines. */
function intrinsic(name: PropertyKey): (value: unknown) => unknown {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- the getter is only ever called with a receiver, through call()
  const get = Object.getOwnPropertyDescriptor(typedArrayProto, name)?.get;
  if (get === undefined) throw new Error(`%TypedArray%.prototype has no ${String(name)} getter`);
  return (value) => {
    const result: unknown = get.call(value);
    return result;
  };
}
const tagOf = intrinsic(Symbol.toStringTag);
const lengthOf = intrinsic('length');
const byteOffsetOf = intrinsic('byteOffset');

/** The intrinsic dtype, length and bytes of a Float32Array or Float64Array (any realm); null for anything else. */
export function floatArrayInfo(value: unknown): FloatArrayInfo | null {
  if (!ArrayBuffer.isView(value)) return null;
  const tag = tagOf(value);
  if (tag !== 'Float32Array' && tag !== 'Float64Array') return null;
  const length = Number(lengthOf(value));
  return {
    dtype: tag === 'Float64Array' ? 'float64' : 'float32',
    length,
    byteOffset: Number(byteOffsetOf(value)),
    byteLength: length * (tag === 'Float64Array' ? 8 : 4),
  };
}

export function dtypeOf(data: FloatArray): DType {
  return data instanceof Float64Array ? 'float64' : 'float32';
}

export function allocate(dtype: DType, length: number): FloatArray {
  return dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
}

/** A tensor normkit made: dispose() (or `using`) returns its memory now where it lives in a backend's memory; a no-op otherwise. */
export interface OwnedTensor<T extends FloatArray = FloatArray> extends Tensor<T> {
  dispose(): void;
  [Symbol.dispose](): void;
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
  return storage?.(dtype, shape) ?? ownedTensor(allocate(dtype, numel(shape)), [...shape]);
}

/** A tensor of the given dtype holding `values`, checked against `shape` (in wasm memory when the wasm backend runs here). */
export function tensor(values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'float32'): OwnedTensor {
  const valid = Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0) && numel(shape) === values.length;
  const t = valid ? emptyTensor(dtype, shape) : ownedTensor(allocate(dtype, values.length), [...shape]);
  t.data.set(values);
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
  // the intrinsic length: a subclass's length getter may lie
  const length = floatArrayInfo(t.data)?.length;
  if (length !== n) {
    throw new NormkitError('length', `${what}: data length ${length} does not match shape ${formatShape(t.shape)} (${n} elements)`);
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor.name;
  return typeof value;
}
