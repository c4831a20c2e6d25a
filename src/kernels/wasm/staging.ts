/**
 * One call's arrays as wasm sees them. Every array is checked through its intrinsic type and length
 * (never the caller object's own `length`; a resident array's were recorded when it was made) against the
 * length the view needs. Resident arrays (made by wasmTensor, tensor() or a layer, and not disposed) are
 * used in place; any other array is copied into one place in wasm memory for the call, the arena's
 * scratch when they fit (outputs copied back at the end). The copies take one allocation, which the arena
 * refuses before growing the memory when it cannot fit.
 */
import { NormkitError } from '../../errors.js';
import type { DType, FloatArray } from '../../core/float.js';
import { floatDtypeOf, intrinsicLength } from '../../core/typed.js';
import type { Arena, Block } from './arena.js';
import { blockBytes } from './arena.js';
import type { Ptr } from './compiled.js';
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
  #dtype: DType;
  /**
   * Per wanted array, where it goes: its byte offset when resident (at least 1024), 0 when it is null or the
   * host's, or -1 - its place in the copies when it must be copied.
   */
  readonly #at: number[] = [];
  /** One block holds every copy of the call (one allocation, not one per array): the arena's scratch when they fit there, else a block; its size, 16-byte aligned parts. */
  #block: Block | null = null;
  #scratch: number | null = null;
  #copyBytes = 0;
  /** The pointers stage() fills, reused by the next call. */
  readonly pointers: Ptr[] = [];

  /** Checks every array (dtype, intrinsic length, not disposed) and sizes the copies, before anything is staged. */
  constructor(arena: Arena, dtype: DType, wanted: readonly Wanted[]) {
    this.#arena = arena;
    this.#wanted = wanted;
    this.#dtype = dtype;
    this.reset(arena, dtype, wanted);
  }

  /** Starts over for another call (what the constructor does, reusing this object's arrays). */
  reset(arena: Arena, dtype: DType, wanted: readonly Wanted[]): void {
    this.#arena = arena;
    this.#wanted = wanted;
    this.#dtype = dtype;
    this.#block = null;
    this.#scratch = null;
    let copyBytes = 0;
    for (let i = 0; i < wanted.length; i++) {
      const w = wanted[i];
      const array = w.array;
      this.#at[i] = 0;
      if (array === null) continue;
      const want = w.dtype ?? dtype;
      // a resident array's type and length were recorded when it was made; any other is read through the intrinsic getters
      const resident = w.role === 'host' ? null : residentOf(array);
      const got = resident === null ? floatDtypeOf(array) : resident.f64 ? 'float64' : 'float32';
      if (got === null || got !== want) {
        throw new NormkitError('dtype', `wasm backend: expected ${w.what} as a ${want === 'float32' ? 'Float32Array' : 'Float64Array'}, got ${got === null ? typeof array : `a ${got} array`}`);
      }
      const length = resident === null ? intrinsicLength(array) : resident.length;
      if (length !== w.length) throw new NormkitError('length', `wasm backend: expected ${w.what} of ${w.length} values, got ${length}`);
      if (resident !== null) {
        if (!resident.block.live) throw new NormkitError('disposed', 'a tensor passed to the wasm backend was disposed: its memory may belong to another tensor now');
        this.#at[i] = resident.block.offset;
      } else if (w.role !== 'host') {
        this.#at[i] = -1 - copyBytes;
        copyBytes += blockBytes(length * (got === 'float64' ? 8 : 4));
      }
    }
    this.#copyBytes = copyBytes;
  }

  /**
   * Every wanted array's pointer (0 for null and the host's arrays): in place when resident, else its copy,
   * inputs copied in. The copies take the arena's scratch when they fit there, else one block (the arena
   * refuses it before growing the memory when it cannot fit).
   */
  stage(): Ptr[] {
    const pointers = this.pointers;
    pointers.length = this.#wanted.length;
    let base = 0;
    if (this.#copyBytes > 0) {
      this.#scratch = this.#arena.takeScratch(this.#copyBytes);
      if (this.#scratch === null) this.#block = this.#arena.alloc(this.#copyBytes);
      base = this.#scratch ?? this.#block?.offset ?? 0;
    }
    for (let i = 0; i < this.#wanted.length; i++) {
      const at = this.#at[i];
      if (at >= 0) {
        pointers[i] = at;
        continue;
      }
      const { array, role, dtype } = this.#wanted[i];
      pointers[i] = base - 1 - at;
      if (array !== null && role !== 'output') this.#arena.copyIn(pointers[i], array, (dtype ?? this.#dtype) === 'float64');
    }
    return pointers;
  }

  /** Copies the outputs back (after the kernels ran). */
  finish(): void {
    for (let i = 0; i < this.#wanted.length; i++) {
      const { array, role, length, dtype } = this.#wanted[i];
      if (this.#at[i] < 0 && role === 'output' && array !== null) this.#arena.copyOut(this.pointers[i], array, length, (dtype ?? this.#dtype) === 'float64');
    }
  }

  /** Returns the copies' block, and lets go of the call's arrays (an idle Staging keeps no tensor alive). */
  free(): void {
    if (this.#block !== null) this.#arena.free(this.#block);
    if (this.#scratch !== null) this.#arena.releaseScratch();
    this.#block = null;
    this.#scratch = null;
    this.#wanted = none;
  }
}

/** One Staging reused call after call (null while a call holds it). */
let idle: Staging | null = null;

/** Runs `body` with the call's arrays staged; outputs copied back only when it returns; the slots emptied (they keep no tensor alive). */
export function staged<T>(arena: Arena, dtype: DType, wanted: readonly WantedSlot[], body: (pointers: Ptr[]) => T): T {
  const st = idle ?? new Staging(arena, dtype, none);
  idle = null;
  try {
    st.reset(arena, dtype, wanted);
    const result = body(st.stage());
    st.finish();
    return result;
  } finally {
    st.free();
    idle = st;
    for (const slot of wanted) slot.array = null;
  }
}
