/**
 * One call's arrays as wasm sees them. Every array is checked through its intrinsic type and length
 * (never the caller object's own `length`) against the length the view needs. Resident arrays (made by
 * wasmTensor, tensor() or a layer, and not disposed) are used in place; any other array is copied into
 * one block of wasm memory for the call (outputs copied back at the end). The copies' bytes are reserved before any
 * is allocated, so a call that cannot fit fails without growing the memory.
 */
import { NormkitError } from '../../errors.js';
import type { DType, FloatArray } from '../../tensor.js';
import { floatDtypeOf, intrinsicLength } from '../../core/typed.js';
import type { Arena, Block } from './arena.js';
import type { Ptr } from './module.js';
import { residentOf } from './resident.js';

/**
 * An array with the length the call needs: read by the kernels (default), written by them ('output'),
 * or read and written by the host only ('host': checked, not staged; dtype may differ, e.g. float64 statistics).
 */
export interface Wanted {
  readonly array: FloatArray | null;
  readonly length: number;
  readonly what: string;
  readonly role?: 'output' | 'host' | undefined;
  readonly dtype?: DType | undefined;
}

/** A Wanted entry refilled call after call (fill): its array and length change, its name and role do not. */
export interface WantedSlot extends Wanted {
  array: FloatArray | null;
  length: number;
}

export function wantedSlot(what: string, role?: 'output' | 'host', dtype?: DType): WantedSlot {
  return { array: null, length: 0, what, role, dtype };
}

export function fill(slot: WantedSlot, array: FloatArray | null, length: number): void {
  slot.array = array;
  slot.length = length;
}

const none: readonly Wanted[] = [];

export class Staging {
  #arena: Arena;
  #wanted: readonly Wanted[];
  /** Per wanted array: its intrinsic byte offset when resident, -1 when it must be copied, -2 when it is null or the host's. */
  readonly #resident: number[] = [];
  /** Per wanted array: its intrinsic length, whether it holds float64, and (copied ones) its place in the copies' block. */
  readonly #lengths: number[] = [];
  readonly #f64: boolean[] = [];
  readonly #places: number[] = [];
  /** Per wanted array: whether pointer() handed it out (outputs copied back only then). */
  readonly #handed: boolean[] = [];
  /** One block holds every copy of the call (one allocation, not one per array); its size, 16-byte aligned parts. */
  #block: Block | null = null;
  #copyBytes = 0;
  /** The pointers staged() hands to its body, reused by the next call. */
  readonly pointers: Ptr[] = [];

  /** Checks every array (dtype, intrinsic length, not disposed) and reserves the copies, before anything is staged. */
  constructor(arena: Arena, dtype: DType, wanted: readonly Wanted[]) {
    this.#arena = arena;
    this.#wanted = wanted;
    this.reset(arena, dtype, wanted);
  }

  /** Starts over for another call (what the constructor does, reusing this object's arrays). */
  reset(arena: Arena, dtype: DType, wanted: readonly Wanted[]): void {
    this.#arena = arena;
    this.#wanted = wanted;
    this.#block = null;
    const n = wanted.length;
    let copyBytes = 0;
    for (let i = 0; i < n; i++) {
      const w = wanted[i];
      this.#handed[i] = false;
      this.#places[i] = 0;
      if (w.array === null) {
        this.#resident[i] = -2;
        this.#lengths[i] = 0;
        this.#f64[i] = false;
        continue;
      }
      const want = w.dtype ?? dtype;
      // a resident array's type and length were recorded when it was made; any other is read through the intrinsic getters
      const resident = w.role === 'host' ? null : residentOf(w.array);
      const got = resident === null ? floatDtypeOf(w.array) : resident.f64 ? 'float64' : 'float32';
      if (got === null || got !== want) {
        throw new NormkitError('dtype', `wasm backend: expected ${w.what} as a ${want === 'float32' ? 'Float32Array' : 'Float64Array'}, got ${got === null ? typeof w.array : `a ${got} array`}`);
      }
      const length = resident === null ? intrinsicLength(w.array) : resident.length;
      if (length !== w.length) throw new NormkitError('length', `wasm backend: expected ${w.what} of ${w.length} values, got ${length}`);
      const f64 = got === 'float64';
      this.#lengths[i] = length;
      this.#f64[i] = f64;
      if (w.role === 'host') {
        this.#resident[i] = -2;
      } else if (resident !== null) {
        if (!resident.block.live) throw new NormkitError('disposed', 'a tensor passed to the wasm backend was disposed: its memory may belong to another tensor now');
        this.#resident[i] = resident.block.offset;
      } else {
        this.#resident[i] = -1;
        this.#places[i] = copyBytes;
        copyBytes += alignedSize(length * (f64 ? 8 : 4));
      }
    }
    this.#copyBytes = copyBytes;
    if (copyBytes > 0) arena.reserve([copyBytes]);
  }

  /** The pointer of wanted[i] (0 for null and the host's arrays): in place when resident, else a copy. */
  pointer(i: number): Ptr {
    const resident = this.#resident[i];
    const array = this.#wanted[i].array;
    if (resident === -2 || array === null) return 0;
    if (resident >= 0) return resident;
    this.#block ??= this.#arena.alloc(this.#copyBytes);
    const offset = this.#block.offset + this.#places[i];
    if (!this.#handed[i] && this.#wanted[i].role !== 'output') this.#arena.copyIn(offset, array, this.#f64[i]);
    this.#handed[i] = true;
    return offset;
  }

  /** Copies the outputs back (after the kernels ran). */
  finish(): void {
    const block = this.#block;
    if (block === null) return;
    for (let i = 0; i < this.#wanted.length; i++) {
      const { array, role } = this.#wanted[i];
      if (role === 'output' && array !== null && this.#handed[i]) this.#arena.copyOut(block.offset + this.#places[i], array, this.#lengths[i], this.#f64[i]);
    }
  }

  /** Returns the copies' block, and lets go of the call's arrays (an idle Staging keeps no tensor alive). */
  free(): void {
    if (this.#block !== null) this.#arena.free(this.#block);
    this.#block = null;
    this.#wanted = none;
  }
}

/** A byte count rounded up to the arena's 16-byte alignment (at least 16, as the arena allocates). */
function alignedSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

/** One Staging reused call after call (null while a call holds it). */
let idle: Staging | null = null;

/** Runs `body` with the call's arrays staged; outputs copied back only when it returns; the slots emptied (they keep no tensor alive). */
export function staged<T>(arena: Arena, dtype: DType, wanted: readonly WantedSlot[], body: (pointers: Ptr[]) => T): T {
  const st = idle ?? new Staging(arena, dtype, none);
  idle = null;
  try {
    st.reset(arena, dtype, wanted);
    const pointers = st.pointers;
    for (let i = 0; i < wanted.length; i++) pointers[i] = st.pointer(i);
    const result = body(pointers);
    st.finish();
    return result;
  } finally {
    st.free();
    idle = st;
    for (const slot of wanted) slot.array = null;
  }
}
