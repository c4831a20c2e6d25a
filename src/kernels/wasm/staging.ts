/**
 * One call's arrays as wasm sees them. Every array is checked through its intrinsic type and length
 * (never the caller object's own `length`) against the length the view needs. Resident arrays (made by
 * wasmTensor, tensor() or a layer, and not disposed) are used in place; any other array is copied into
 * a block of wasm memory (outputs copied back at the end). The copies' bytes are reserved before any
 * is allocated, so a call that cannot fit fails without growing the memory.
 */
import { NormkitError } from '../../errors.js';
import type { DType, FloatArray, FloatArrayInfo } from '../../tensor.js';
import { floatArrayInfo } from '../../tensor.js';
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

interface Checked {
  readonly array: FloatArray;
  readonly info: FloatArrayInfo;
  readonly resident: boolean;
  readonly role: 'input' | 'output' | 'host';
}

export class Staging {
  readonly #arena: Arena;
  readonly #blocks: Block[] = [];
  readonly #outputs: [FloatArray, Ptr, number][] = [];
  readonly #checked: (Checked | null)[];

  /** Checks every array (dtype, intrinsic length, not disposed) and reserves the copies, before anything is staged. */
  constructor(arena: Arena, dtype: DType, wanted: readonly Wanted[]) {
    this.#arena = arena;
    this.#checked = wanted.map((w) => {
      if (w.array === null) return null;
      const info = floatArrayInfo(w.array);
      const want = w.dtype ?? dtype;
      if (info === null || info.dtype !== want) {
        throw new NormkitError('dtype', `wasm backend: expected ${w.what} as a ${want === 'float32' ? 'Float32Array' : 'Float64Array'}, got ${info === null ? typeof w.array : `a ${info.dtype} array`}`);
      }
      if (info.length !== w.length) throw new NormkitError('length', `wasm backend: expected ${w.what} of ${w.length} values, got ${info.length}`);
      const role = w.role ?? 'input';
      return { array: w.array, info, resident: role !== 'host' && residentBlock(w.array, info) !== null, role };
    });
    arena.reserve(this.#checked.flatMap((c) => (c === null || c.resident || c.role === 'host' ? [] : [c.info.byteLength])));
  }

  /** The pointer of wanted[i] (0 for null): in place when resident, else a copy. */
  pointer(i: number): Ptr {
    const c = this.#checked[i];
    if (c === null || c.role === 'host') return 0;
    if (c.resident) return c.info.byteOffset;
    const block = this.#arena.alloc(c.info.byteLength);
    this.#blocks.push(block);
    if (c.role === 'output') this.#outputs.push([c.array, block.offset, c.info.length]);
    else this.#arena.copyIn(block.offset, c.array);
    return block.offset;
  }

  /** Copies the outputs back (after the kernels ran). */
  finish(): void {
    for (const [array, offset, length] of this.#outputs) this.#arena.copyOut(offset, array, length);
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
