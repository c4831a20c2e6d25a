/**
 * The one rule for memory a tensor no longer owns: a tensor whose wasm block was returned (dispose(),
 * freeWasmTensor) or whose ArrayBuffer was detached (transferred to a worker, structuredClone with
 * `transfer`) is refused with a 'disposed' NormkitError wherever normkit reads or writes it: an input,
 * `out`, grad_output, and the input forward saved for backward. Plain arrays' dispose() returns nothing,
 * so they stay usable. Every layer entry point calls `checkUsable` (through readTensor in tensor.ts).
 */
import { NormkitError } from '../errors.js';

/** Whether an array's memory was given back to a backend (the wasm backend installs it: kernels/index.ts). */
let released: (array: ArrayBufferView) => boolean = () => false;

export function setReleasedCheck(check: (array: ArrayBufferView) => boolean): void {
  released = check;
}

const byteLengthOf = Reflect.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')?.get;
const sliceOf: unknown = Reflect.get(ArrayBuffer.prototype, 'slice');

/** Whether `buffer` is a detached ArrayBuffer (a SharedArrayBuffer never is). */
export function isDetached(buffer: ArrayBufferLike): boolean {
  if (!(buffer instanceof ArrayBuffer) || byteLengthOf === undefined || typeof sliceOf !== 'function') return false;
  // a detached buffer reads as 0 bytes; a real empty one slices, a detached one throws
  if (Reflect.apply(byteLengthOf, buffer, []) !== 0) return false;
  try {
    Reflect.apply(sliceOf, buffer, [0, 0]);
    return false;
  } catch {
    return true;
  }
}

/** Throws the documented 'disposed' NormkitError when `array`'s memory was released or detached. */
export function checkUsable(array: ArrayBufferView, what: string): void {
  if (isDetached(array.buffer)) {
    throw new NormkitError('disposed', `${what}: its ArrayBuffer was detached (transferred), so it holds no data any more`);
  }
  if (released(array)) {
    throw new NormkitError('disposed', `${what}: the tensor was disposed, and its memory may belong to another tensor now`);
  }
}

/**
 * Whether two SharedArrayBuffer objects are the same memory (one object per clone or per wasm memory
 * growth, so identity cannot tell): the byte at `at` flipped through one, read through the other, and
 * flipped back (atomically; the caller's arrays are as they were once this returns).
 */
export function sameSharedMemory(a: ArrayBufferLike, b: ArrayBufferLike, at: number): boolean {
  if (typeof SharedArrayBuffer !== 'function' || !(a instanceof SharedArrayBuffer) || !(b instanceof SharedArrayBuffer)) return false;
  if (at >= a.byteLength || at >= b.byteLength) return false;
  const viaA = new Uint8Array(a, at, 1);
  const viaB = new Uint8Array(b, at, 1);
  const before = Atomics.load(viaA, 0);
  if (Atomics.load(viaB, 0) !== before) return false;
  Atomics.xor(viaA, 0, 0xff);
  const same = Atomics.load(viaB, 0) === (before ^ 0xff);
  Atomics.xor(viaA, 0, 0xff);
  return same;
}
