/**
 * What normkit allocates at most, checked in bytes before any allocation: a size past these is a 'size'
 * NormkitError naming the limit, never a multi-GiB attempt or an engine abort.
 */
import { NormkitError } from '../errors.js';

/** The most bytes one array normkit makes may hold (a tensor, an output, a parameter): 2 GiB. */
export const MAX_ARRAY_BYTES = 2 ** 31;
/** The most bytes a layer's own arrays (parameters, gradients, running statistics) may hold together: 2 GiB. */
export const MAX_LAYER_BYTES = 2 ** 31;

const GIB = 2 ** 30;

function bytesText(bytes: number): string {
  return bytes >= GIB ? `${(bytes / GIB).toFixed(1)} GiB` : `${bytes} bytes`;
}

/** Bytes per value of a float dtype. */
export function bytesPer(dtype: 'float32' | 'float64'): number {
  return dtype === 'float64' ? 8 : 4;
}

/** Throws a 'size' NormkitError unless `count` values of `dtype` fit in one array (MAX_ARRAY_BYTES). */
export function checkArrayBytes(who: string, count: number, dtype: 'float32' | 'float64'): void {
  const bytes = count * bytesPer(dtype);
  if (!Number.isSafeInteger(count) || count < 0 || bytes > MAX_ARRAY_BYTES) {
    throw new NormkitError('size', `${who}: ${count} ${dtype} values need ${bytesText(bytes)}; one array may hold at most ${bytesText(MAX_ARRAY_BYTES)}`);
  }
}

/** Throws a 'size' NormkitError unless arrays of these value counts fit in MAX_LAYER_BYTES together (and each in MAX_ARRAY_BYTES). */
export function checkLayerBytes(who: string, counts: readonly number[], dtype: 'float32' | 'float64'): void {
  let total = 0;
  for (const count of counts) {
    checkArrayBytes(who, count, dtype);
    total += count;
  }
  const bytes = total * bytesPer(dtype);
  if (bytes > MAX_LAYER_BYTES) {
    throw new NormkitError('size', `${who}: its parameters, gradients and buffers need ${bytesText(bytes)} (${total} ${dtype} values); a layer may hold at most ${bytesText(MAX_LAYER_BYTES)}`);
  }
}

/** The most threads the wasm backend's pool may use (each is a worker with its own engine instance). */
export const MAX_WASM_THREADS = 64;

/** `threads` checked: an integer from 1 to MAX_WASM_THREADS, else an 'option' or 'size' NormkitError naming `who`. */
export function checkThreads(who: string, threads: unknown): number {
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1) {
    throw new NormkitError('option', `${who}: threads must be a positive integer, got ${typeof threads === 'number' || threads === null || threads === undefined ? String(threads) : typeof threads}`);
  }
  if (threads > MAX_WASM_THREADS) throw new NormkitError('size', `${who}: threads must be at most ${MAX_WASM_THREADS}, got ${threads}`);
  return threads;
}
