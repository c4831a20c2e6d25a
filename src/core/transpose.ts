/** Moves the channel axis between position 1 (channels-first) and last (channels-last), row-major. */
import type { FloatArray } from './float.js';
import { numel } from './float.js';

/** (N, C, ...P) -> (N, ...P, C); returns the new data and shape. */
export function toChannelsLast(data: FloatArray, shape: readonly number[]): { data: FloatArray; shape: number[] } {
  const [n = 1, c = 1] = shape;
  const p = numel(shape.slice(2));
  const out = data.slice();
  for (let a = 0; a < n; a++) {
    for (let ch = 0; ch < c; ch++) {
      for (let s = 0; s < p; s++) out[(a * p + s) * c + ch] = data[(a * c + ch) * p + s];
    }
  }
  return { data: out, shape: shape.length < 2 ? [...shape] : [n, ...shape.slice(2), c] };
}

/** (N, ...P, C) -> (N, C, ...P); returns the new data and shape. */
export function toChannelsFirst(data: FloatArray, shape: readonly number[]): { data: FloatArray; shape: number[] } {
  const n = shape[0] ?? 1;
  const c = shape[shape.length - 1] ?? 1;
  const p = numel(shape.slice(1, -1));
  const out = data.slice();
  for (let a = 0; a < n; a++) {
    for (let ch = 0; ch < c; ch++) {
      for (let s = 0; s < p; s++) out[(a * c + ch) * p + s] = data[(a * p + s) * c + ch];
    }
  }
  return { data: out, shape: shape.length < 2 ? [...shape] : [n, c, ...shape.slice(1, -1)] };
}
