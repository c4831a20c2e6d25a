/**
 * One call's arrays as wasm sees them. Every array is checked through its intrinsic type and length
 * (never the caller object's own `length`) against the length the view needs. Resident arrays (made by
 * wasmTensor, tensor() or a layer, and not disposed) are used in place; any other array is copied into
 * a block of wasm memory (outputs copied back at the end). The copies' bytes are reserved before any
 * is allocated, so a call that cannot fit fails without growing the memory.
 */
import { NormkitError } from '../../errors.js';
import type { DType, FloatArray } from '../../tensor.js';
import { floatArrayInfo } from '../../core/typed.js';
import type { Arena, Block } from './arena.js';
import type { Ptr } from './module.js';
import { residentBlock } from './resident.js';

/**
 * An array with the length the call needs: read by the kernels (default), written by them ('output'),
 * or read and written by the host only ('host': checked, not staged; dtype may differ, e.g. float64 statistics).
 */
export interface Wanted {
  readonly array: FloatArray | null;
  readonly length: number;
  readonly what: string;
  readonly role?: 'output' | 'host';
  readonly dtype?: DType;
}

export class Staging {
  readonly #arena: Arena;
  readonly #wanted: readonly Wanted[];
  /** Per wanted array: its intrinsic byte offset when resident, -1 when it must be copied, -2 when it is null or the host's. */
  readonly #resident: number[];
  /** Per wanted array: its intrinsic length and whether it holds float64 (by its intrinsic type). */
  readonly #lengths: number[];
  readonly #f64: boolean[];
  readonly #blocks: Block[] = [];
  readonly #outputs: [FloatArray, Ptr, number, boolean][] = [];

  /** Checks every array (dtype, intrinsic length, not disposed) and reserves the copies, before anything is staged. */
  constructor(arena: Arena, dtype: DType, wanted: readonly Wanted[]) {
    this.#arena = arena;
    this.#wanted = wanted;
    this.#resident = [];
    this.#lengths = [];
    this.#f64 = [];
    const copies: number[] = [];
    for (const w of wanted) {
      if (w.array === null) {
        this.#resident.push(-2);
        this.#lengths.push(0);
        this.#f64.push(false);
        continue;
      }
      const info = floatArrayInfo(w.array);
      const want = w.dtype ?? dtype;
      if (info === null || info.dtype !== want) {
        throw new NormkitError('dtype', `wasm backend: expected ${w.what} as a ${want === 'float32' ? 'Float32Array' : 'Float64Array'}, got ${info === null ? typeof w.array : `a ${info.dtype} array`}`);
      }
      if (info.length !== w.length) throw new NormkitError('length', `wasm backend: expected ${w.what} of ${w.length} values, got ${info.length}`);
      this.#lengths.push(info.length);
      this.#f64.push(info.dtype === 'float64');
      if (w.role === 'host') {
        this.#resident.push(-2);
      } else if (residentBlock(w.array, info) !== null) {
        this.#resident.push(info.byteOffset);
      } else {
        this.#resident.push(-1);
        copies.push(info.byteLength);
      }
    }
    arena.reserve(copies);
  }

  /** The pointer of wanted[i] (0 for null and the host's arrays): in place when resident, else a copy. */
  pointer(i: number): Ptr {
    const resident = this.#resident[i];
    const { array, role } = this.#wanted[i];
    if (resident === -2 || array === null) return 0;
    if (resident >= 0) return resident;
    const [length, f64] = [this.#lengths[i], this.#f64[i]];
    const block = this.#arena.alloc(length * (f64 ? 8 : 4));
    this.#blocks.push(block);
    if (role === 'output') this.#outputs.push([array, block.offset, length, f64]);
    else this.#arena.copyIn(block.offset, array, f64);
    return block.offset;
  }

  /** Copies the outputs back (after the kernels ran). */
  finish(): void {
    for (const [array, offset, length, f64] of this.#outputs) this.#arena.copyOut(offset, array, length, f64);
  }

  free(): void {
    for (const block of this.#blocks) this.#arena.free(block);
  }
}

/** Runs `body` with the call's arrays staged; outputs copied back only when it returns. */
export function staged<T>(arena: Arena, dtype: DType, wanted: readonly Wanted[], body: (pointers: Ptr[]) => T): T {
  const st = new Staging(arena, dtype, wanted);
  try {
    const result = body(wanted.map((_, i) => st.pointer(i)));
    st.finish();
    return result;
  } finally {
    st.free();
  }
}
