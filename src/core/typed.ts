/**
 * What a caller's typed array really is, read through the intrinsic %TypedArray% accessors: a subclass
 * or an object may override `length`, `byteOffset` or `buffer`, and an array from another realm (vm,
 * iframe) fails `instanceof`. Every array normkit reads or writes goes through `plainView` first.
 */
import type { FloatArray } from './float.js';
import { sameSharedMemory } from './memory.js';

const typedArrayPrototype: object = Object.getPrototypeOf(Int8Array.prototype) as object;

/** The getters' (empty) argument list, one for every call. */
const noArgs: readonly [] = [];

/** The intrinsic getter `name` of %TypedArray%.prototype, called on any value. */
function intrinsic(name: PropertyKey): (value: unknown) => unknown {
  const getter: unknown = Reflect.getOwnPropertyDescriptor(typedArrayPrototype, name)?.get;
  if (typeof getter !== 'function') throw new Error(`no intrinsic %TypedArray%.prototype.${String(name)}`);
  return (value): unknown => {
    const result: unknown = Reflect.apply(getter, value, noArgs);
    return result;
  };
}

const tagOf = intrinsic(Symbol.toStringTag);
const bufferOf = intrinsic('buffer');
const byteOffsetOf = intrinsic('byteOffset');
const lengthOf = intrinsic('length');

/** 'Float32Array', 'Int8Array', ... for any typed array (subclass or other realm too); undefined otherwise. */
export function typedArrayTag(value: unknown): string | undefined {
  const tag = tagOf(value);
  return typeof tag === 'string' ? tag : undefined;
}

/** The accessors a subclass or an own property could override. */
const accessors = ['length', 'byteOffset', 'byteLength', 'buffer'] as const;

/** True unless the array is a plain Float32Array/Float64Array of this realm with no overridden accessor. */
function needsRebuild(value: Float32Array | Float64Array): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Float32Array.prototype && proto !== Float64Array.prototype) return true;
  for (let i = 0; i < accessors.length; i++) if (Object.hasOwn(value, accessors[i])) return true;
  return false;
}

/**
 * The float array a caller passed as a plain view of this realm over the same memory (the same object
 * when it already is one), or null when it is not a Float32Array or Float64Array.
 */
export function plainView(value: unknown): FloatArray | null {
  const tag = typedArrayTag(value);
  if (tag !== 'Float32Array' && tag !== 'Float64Array') return null;
  if ((value instanceof Float32Array || value instanceof Float64Array) && !needsRebuild(value)) return value;
  const buffer = bufferOf(value) as ArrayBufferLike;
  const offset = byteOffsetOf(value) as number;
  const length = lengthOf(value) as number;
  return tag === 'Float32Array' ? new Float32Array(buffer, offset, length) : new Float64Array(buffer, offset, length);
}

/** The intrinsic dtype of a Float32Array or Float64Array (any realm); null for anything else. */
export function floatDtypeOf(value: unknown): 'float32' | 'float64' | null {
  const tag = typedArrayTag(value);
  return tag === 'Float32Array' ? 'float32' : tag === 'Float64Array' ? 'float64' : null;
}

/** The intrinsic length of a typed array (floatDtypeOf said it is one): no object made, for hot paths. */
export function intrinsicLength(array: FloatArray): number {
  return lengthOf(array) as number;
}

/**
 * Whether two arrays share any byte of memory: views of one buffer whose byte ranges meet, or of two
 * SharedArrayBuffer objects over the same memory (a clone posted back, wasm memory's buffer after it grew).
 */
export function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const from = Math.max(a.byteOffset, b.byteOffset);
  const to = Math.min(a.byteOffset + a.byteLength, b.byteOffset + b.byteLength);
  if (from >= to) return false;
  return a.buffer === b.buffer || sameSharedMemory(a.buffer, b.buffer, from);
}
