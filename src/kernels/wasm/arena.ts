/**
 * Allocation inside the wasm memory: first-fit over sorted blocks, 16-byte aligned, growing the memory
 * when full. With shared memory old views stay valid across growth, so typed arrays handed out here
 * can live in wasm memory for good (no copies in hot loops).
 */
import { NormkitError } from '../../errors.js';

const ALIGN = 16;
const PAGE = 65536;
/** Offsets below this are never handed out: 0 means "no array" to the kernels. */
const BASE = 1024;

export class Arena {
  readonly memory: WebAssembly.Memory;
  /** Allocated blocks [offset, bytes], sorted by offset. */
  readonly #blocks: [number, number][] = [];
  /** Every buffer the memory has exposed: views into any of them are resident. */
  readonly #buffers = new Set<ArrayBufferLike>();
  /** memory.buffer and views of it, made once per growth (views of shared memory are slow to create) */
  #buffer: ArrayBufferLike;
  #f64: Float64Array;
  #f32: Float32Array;

  constructor(memory: WebAssembly.Memory) {
    this.memory = memory;
    this.#buffer = memory.buffer;
    this.#f64 = new Float64Array(this.#buffer);
    this.#f32 = new Float32Array(this.#buffer);
    this.#buffers.add(this.#buffer);
  }

  get buffer(): ArrayBufferLike {
    return this.#buffer;
  }

  /** Whether a typed array lives in this memory. */
  holds(array: ArrayBufferView): boolean {
    return this.#buffers.has(array.buffer);
  }

  alloc(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    let start = BASE;
    let index = 0;
    for (; index < this.#blocks.length; index++) {
      const [offset, length] = this.#blocks[index];
      if (offset - start >= size) break;
      start = offset + length;
    }
    const end = start + size;
    if (end > this.#buffer.byteLength) {
      const pages = Math.ceil((end - this.#buffer.byteLength) / PAGE);
      try {
        this.memory.grow(pages);
      } catch {
        throw new NormkitError('backend', `wasm memory cannot grow to ${end} bytes`);
      }
      this.#buffer = this.memory.buffer;
      this.#f64 = new Float64Array(this.#buffer);
      this.#f32 = new Float32Array(this.#buffer);
      this.#buffers.add(this.#buffer);
    }
    this.#blocks.splice(index, 0, [start, size]);
    return start;
  }

  free(offset: number): void {
    const index = this.#blocks.findIndex(([o]) => o === offset);
    if (index < 0) throw new NormkitError('backend', `wasm memory: no block at ${offset}`);
    this.#blocks.splice(index, 1);
  }

  /** Copies `values` into memory at `offset` as float64 (zeros when values is a length). */
  writeF64(offset: number, values: ArrayLike<number> | number): void {
    const base = offset / 8;
    if (typeof values === 'number') this.#f64.fill(0, base, base + values);
    else if (values instanceof Float64Array) this.#f64.set(values, base);
    else for (let i = 0; i < values.length; i++) this.#f64[base + i] = values[i];
  }

  /** Copies `values` into memory at `offset` as float32. */
  writeF32(offset: number, values: ArrayLike<number>): void {
    const base = offset / 4;
    if (values instanceof Float32Array) this.#f32.set(values, base);
    else for (let i = 0; i < values.length; i++) this.#f32[base + i] = values[i];
  }

  /** Copies typed-array data into memory at `offset`, or (out) memory into it. */
  copyIn(offset: number, array: Float32Array | Float64Array): void {
    if (array instanceof Float64Array) this.#f64.set(array, offset / 8);
    else this.#f32.set(array, offset / 4);
  }

  copyOut(offset: number, array: Float32Array | Float64Array): void {
    if (array instanceof Float64Array) array.set(this.#f64.subarray(offset / 8, offset / 8 + array.length));
    else array.set(this.#f32.subarray(offset / 4, offset / 4 + array.length));
  }

  /** float64 values at `offset`, copied out (a loop: slice() of a view of shared memory is slow). */
  readF64(offset: number, length: number): Float64Array {
    const out = new Float64Array(length);
    const base = offset / 8;
    for (let i = 0; i < length; i++) out[i] = this.#f64[base + i];
    return out;
  }
}
