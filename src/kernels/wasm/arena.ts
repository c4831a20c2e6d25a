/**
 * Allocation inside the wasm memory: first-fit over sorted blocks, 16-byte aligned, growing the memory
 * when full. With shared memory old views stay valid across growth, so typed arrays handed out here
 * can live in wasm memory for good (no copies in hot loops). Blocks are handles: freeing one twice, or
 * after its bytes went to another block, frees nothing else.
 */
import { NormkitError } from '../../errors.js';

const ALIGN = 16;
const PAGE = 65536;
/** Offsets below 1024 are never handed out (0 means "no array" to the kernels); then the scratch, then the blocks. */
const SCRATCH = 1024;
/** Bytes of scratch: one call's small copies go there (staging.ts), with no block to allocate and free. */
export const SCRATCH_BYTES = 4096;
const BASE = SCRATCH + SCRATCH_BYTES;
/** The wasm32 memory limit the modules declare (65536 pages). */
export const MAX_BYTES = 65536 * PAGE;

/** One allocation: [offset, offset + bytes) until freed. */
export interface Block {
  readonly offset: number;
  readonly bytes: number;
  readonly live: boolean;
}

class Allocation implements Block {
  live = true;
  constructor(
    readonly offset: number,
    readonly bytes: number,
  ) {}
}

/**
 * Blocks from this size on take whole 4 KB pages plus STAGGER bytes, so blocks allocated one after another
 * start at different offsets modulo 4 KB: arrays at equal offsets share L1 sets and alias in the CPU's
 * store-to-load checks (row-mode dx on shape B ran 1.5x slower so).
 */
const STAGGER_MIN = 16384;
const STAGGER = 192;

/** The bytes alloc() takes for a request of `bytes`: staging lays out a call's copies inside one block the same way. */
export function blockBytes(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new NormkitError('backend', `wasm memory: expected a byte count (a non-negative integer), got ${bytes}`);
  const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  return size < STAGGER_MIN ? size : Math.ceil(size / 4096) * 4096 + STAGGER;
}

export class Arena {
  readonly memory: WebAssembly.Memory;
  /** Live blocks, sorted by offset. */
  readonly #blocks: Allocation[] = [];
  /** Every buffer the memory has exposed: views into any of them are views of wasm memory. */
  readonly #buffers = new Set<ArrayBufferLike>();
  #used = 0;
  /** memory.buffer and views of it, made once per growth (views of shared memory are slow to create) */
  #buffer: ArrayBufferLike;
  #f64: Float64Array;
  #f32: Float32Array;

  /** Bytes the arena may span (the wasm32 limit; tests pass less). */
  readonly #limit: number;
  /** Whether a call holds the scratch. */
  #scratchHeld = false;

  constructor(memory: WebAssembly.Memory, limit = MAX_BYTES) {
    this.memory = memory;
    this.#limit = limit;
    this.#buffer = memory.buffer;
    this.#f64 = new Float64Array(this.#buffer);
    this.#f32 = new Float32Array(this.#buffer);
    this.#buffers.add(this.#buffer);
  }

  get buffer(): ArrayBufferLike {
    return this.#buffer;
  }

  /** Bytes the memory spans now (it never shrinks). */
  get size(): number {
    return this.#buffer.byteLength;
  }

  /** Bytes in live blocks. */
  get used(): number {
    return this.#used;
  }

  /** The end of the last block. */
  get #top(): number {
    const last = this.#blocks.at(-1);
    return last === undefined ? BASE : last.offset + last.bytes;
  }

  /** Whether a buffer is (a past or present view of) this memory. */
  isMemory(buffer: ArrayBufferLike): boolean {
    return this.#buffers.has(buffer);
  }

  alloc(bytes: number): Block {
    const size = blockBytes(bytes);
    let start = BASE;
    let index = 0;
    if (this.#top - BASE - this.#used >= size) {
      // first fit among the holes
      for (; index < this.#blocks.length; index++) {
        const { offset, bytes: length } = this.#blocks[index];
        if (offset - start >= size) break;
        start = offset + length;
      }
    } else {
      // no hole is large enough: after the last block, without a scan
      index = this.#blocks.length;
      start = this.#top;
    }
    const end = start + size;
    if (end > this.#limit) throw new NormkitError('backend', `wasm memory: ${bytes} bytes do not fit under the ${this.#limit}-byte limit`);
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
    const block = new Allocation(start, size);
    // insert at index (a loop: splice makes an array of what it removes on every call)
    const blocks = this.#blocks;
    blocks.push(block);
    for (let i = blocks.length - 1; i > index; i--) blocks[i] = blocks[i - 1];
    blocks[index] = block;
    this.#used += size;
    return block;
  }

  /** The scratch's offset for a call's `bytes` of copies, or null when they do not fit or another call holds it; releaseScratch() gives it back. */
  takeScratch(bytes: number): number | null {
    if (this.#scratchHeld || bytes > SCRATCH_BYTES) return null;
    this.#scratchHeld = true;
    return SCRATCH;
  }

  releaseScratch(): void {
    this.#scratchHeld = false;
  }

  /** Returns a block; a block already freed is left alone (its bytes may belong to another now). */
  free(block: Block): void {
    if (!(block instanceof Allocation) || !block.live) return;
    block.live = false;
    // blocks are sorted by offset: binary search
    let [lo, hi] = [0, this.#blocks.length - 1];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#blocks[mid].offset < block.offset) lo = mid + 1;
      else hi = mid;
    }
    const blocks = this.#blocks;
    if (blocks[lo] === block) {
      for (let i = lo; i < blocks.length - 1; i++) blocks[i] = blocks[i + 1];
      blocks.pop();
      this.#used -= block.bytes;
    }
  }

  /** Zeroes `length` float64 values at `offset`. */
  zeroF64(offset: number, length: number): void {
    this.#f64.fill(0, offset / 8, offset / 8 + length);
  }

  /** Copies the first `length` values into memory at `offset` as float64. */
  writeF64(offset: number, values: ArrayLike<number>, length: number): void {
    const base = offset / 8;
    for (let i = 0; i < length; i++) this.#f64[base + i] = values[i];
  }

  /** Copies typed-array data into memory at `offset` (set() reads the array's intrinsic length); f64: its intrinsic type. */
  copyIn(offset: number, array: Float32Array | Float64Array, f64: boolean): void {
    if (f64) this.#f64.set(array, offset / 8);
    else this.#f32.set(array, offset / 4);
  }

  /** Copies `length` values at `offset` out into `array` (by the intrinsic set: a subclass may override its own). */
  copyOut(offset: number, array: Float32Array | Float64Array, length: number, f64: boolean): void {
    if (f64) Float64Array.prototype.set.call(array, this.#f64.subarray(offset / 8, offset / 8 + length));
    else Float32Array.prototype.set.call(array, this.#f32.subarray(offset / 4, offset / 4 + length));
  }

  /** Copies `length` float64 values at `offset` into `out` (a loop: set() from a view of shared memory is slow for short runs). */
  readF64(offset: number, out: Float32Array | Float64Array, length: number): void {
    const base = offset / 8;
    for (let i = 0; i < length; i++) out[i] = this.#f64[base + i];
  }
}

