/**
 * Tensors whose data lives in wasm memory, so the wasm kernels read and write them without copies.
 * Each owns one arena block: dispose() (or `using`) returns it; a FinalizationRegistry returns it once
 * the data array is unreachable (between tasks: not inside one synchronous loop). Tensors normkit makes
 * by default (tensor(), layer outputs) stay under a budget of resident bytes and are plain arrays beyond
 * it, so memory stays bounded when nothing is disposed. Needs shared memory (Node, or a cross-origin-
 * isolated page): there views survive memory growth.
 */
import { checkArrayBytes } from '../../core/limits.js';
import { NormkitError } from '../../errors.js';
import type { DType, FloatArray, OwnedTensor, Tensor } from '../../tensor.js';
import { describeValue, numel, ownedTensor } from '../../tensor.js';
import type { Block } from './arena.js';
import type { State } from './state.js';
import { current, ready } from './state.js';

/** Bytes that live default allocations (tensor(), layer outputs) may hold before new ones are plain arrays. */
export const DEFAULT_RESIDENT_BUDGET = 256 * 1024 * 1024;
let residentBudget = DEFAULT_RESIDENT_BUDGET;

/** Sets the budget of resident bytes for default allocations (wasmTensor is not limited by it). */
export function setResidentBudget(bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new NormkitError('option', `resident budget: expected a non-negative integer of bytes, got ${bytes}`);
  residentBudget = bytes;
}

/** What a resident array is, recorded when it was made (its intrinsic length and type cannot change since). */
export interface Resident {
  readonly block: Block;
  readonly length: number;
  readonly f64: boolean;
}

/**
 * A resident array's block, whether it is a default allocation (counted against the budget), and where
 * the registry stands: its place in the pending list, or registered.
 */
interface Owned extends Resident {
  readonly counted: boolean;
  pending: number;
  registered: boolean;
}

/** Returns its argument from the constructor, so that a subclass's private field lands on that object. */
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- its constructor's return is the point
class Passthrough {
  constructor(target: object) {
    return target;
  }
}

/**
 * Each resident data array's record, in a private field of the array itself: the only arrays the kernels
 * use in place. Unforgeable and unseen as a WeakMap key would be, without a weak table (a WeakMap entry
 * per tensor made every minor GC cost more than a small call's kernels).
 */
class Owners extends Passthrough {
  readonly #owned: Owned;

  private constructor(target: FloatArray, owned: Owned) {
    super(target);
    this.#owned = owned;
  }

  static set(target: FloatArray, owned: Owned): void {
    new Owners(target, owned);
  }

  static get(target: unknown): Owned | undefined {
    return typeof target === 'object' && target !== null && #owned in target ? target.#owned : undefined;
  }
}
/** Bytes of live default allocations (what the budget limits; wasmTensor's are the caller's to manage). */
let defaultBytes = 0;

const registry = new FinalizationRegistry<Owned>((owned) => {
  const s = current();
  if (s !== null) release(s, owned);
});

/**
 * Arrays not yet given to the registry, and their records: registering costs more than a small call's
 * kernels, and most tensors are disposed soon after they are made (dispose() takes them off this list).
 * Those still live are registered at the end of the task (a microtask) or once PENDING_MAX wait: held
 * until then, an array dropped at once comes back one collection later at most (the registry's callbacks
 * run between tasks anyway).
 */
const pendingData: FloatArray[] = [];
const pendingOwned: Owned[] = [];
const PENDING_MAX = 64;
let flushQueued = false;

function flushPending(): void {
  flushQueued = false;
  for (let i = 0; i < pendingData.length; i++) {
    const owned = pendingOwned[i];
    registry.register(pendingData[i], owned, owned);
    owned.pending = -1;
    owned.registered = true;
  }
  pendingData.length = 0;
  pendingOwned.length = 0;
}

function track(data: FloatArray, owned: Owned): void {
  owned.pending = pendingData.length;
  pendingData.push(data);
  pendingOwned.push(owned);
  if (pendingData.length >= PENDING_MAX) flushPending();
  else if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(flushPending);
  }
}

/** Takes a record off the pending list (its last entry moves into its place) or out of the registry. */
function untrack(owned: Owned): void {
  const i = owned.pending;
  if (i >= 0) {
    const lastData = pendingData.pop();
    const lastOwned = pendingOwned.pop();
    if (lastData !== undefined && lastOwned !== undefined && lastOwned !== owned) {
      pendingData[i] = lastData;
      pendingOwned[i] = lastOwned;
      lastOwned.pending = i;
    }
    owned.pending = -1;
  }
  if (owned.registered) {
    registry.unregister(owned);
    owned.registered = false;
  }
}

function release(s: State, owned: Owned): void {
  if (!owned.block.live) return;
  if (owned.counted) defaultBytes -= owned.block.bytes;
  s.arena.free(owned.block);
}

function checkedShape(dtype: unknown, shape: unknown): { dtype: DType; shape: number[]; n: number } {
  if (dtype !== 'float32' && dtype !== 'float64') throw new NormkitError('dtype', `wasmTensor: expected dtype 'float32' or 'float64', got ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isSafeInteger(d) && d >= 0)) {
    throw new NormkitError('shape', `wasmTensor: expected a shape of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const n = numel(shape);
  if (!Number.isSafeInteger(n)) throw new NormkitError('shape', `wasmTensor: shape ${JSON.stringify(shape)} has too many elements`);
  checkArrayBytes('wasmTensor', n, dtype);
  return { dtype, shape: [...shape], n };
}

function disposer(s: State, owned: Owned): () => void {
  return () => {
    untrack(owned);
    release(s, owned);
  };
}

/**
 * A tensor over a new block: explicit (wasmTensor) ones are zeroed; default ones count against the
 * budget and hold whatever the block held until the caller writes every value.
 */
function allocate(s: State, dtype: DType, shape: number[], n: number, explicit: boolean): OwnedTensor {
  const block = s.arena.alloc(n * (dtype === 'float64' ? 8 : 4));
  const owned: Owned = { block, length: n, f64: dtype === 'float64', counted: !explicit, pending: -1, registered: false };
  if (!explicit) defaultBytes += block.bytes;
  const data = dtype === 'float64' ? new Float64Array(s.arena.buffer, block.offset, n) : new Float32Array(s.arena.buffer, block.offset, n);
  if (explicit) s.kernels.zero(block.offset, block.bytes);
  Owners.set(data, owned);
  track(data, owned);
  const dispose = disposer(s, owned);
  return ownedTensor(data, shape, dispose);
}

/** A zeroed tensor in wasm memory; dispose() (or freeWasmTensor) returns its memory. */
export function wasmTensor(dtype: DType, shape: readonly number[]): OwnedTensor {
  const checked = checkedShape(dtype, shape);
  const s = ready();
  if (!s.shared.shared) throw new NormkitError('backend', 'wasmTensor needs shared wasm memory (SharedArrayBuffer); copy-in arrays work everywhere');
  return allocate(s, checked.dtype, checked.shape, checked.n, true);
}

/** Returns a wasmTensor's memory (as its dispose() does); the tensor must not be used afterwards. */
export function freeWasmTensor(t: Tensor): void {
  const given: unknown = t;
  if (typeof given !== 'object' || given === null) throw new NormkitError('shape', `freeWasmTensor: expected a tensor made by wasmTensor, got ${describeValue(given)}`);
  const owned = Owners.get(Reflect.get(given, 'data'));
  if (owned === undefined) throw new NormkitError('backend', 'freeWasmTensor: this tensor does not live in wasm memory');
  disposer(ready(), owned)();
}

/** The wasm memory's size and the bytes in live blocks (resident tensors, cached plans, a running call's copies). */
export function wasmMemory(): { readonly size: number; readonly used: number } {
  const s = ready();
  return { size: s.arena.size, used: s.arena.used };
}

/**
 * A tensor in wasm memory for a default allocation, or null (no shared memory, over the budget, or wasm
 * not loaded). Not zeroed: the caller overwrites every value (tensor() its values, a layer its output).
 */
export function residentTensor(dtype: DType, shape: readonly number[]): OwnedTensor | null {
  const s = current();
  if (s === null || !s.shared.shared) return null;
  const n = numel(shape);
  const bytes = n * (dtype === 'float64' ? 8 : 4);
  if (defaultBytes + bytes > residentBudget) return null;
  return allocate(s, dtype, [...shape], n, false);
}

/**
 * What a resident data array is (see Resident), or null for any other array (which is copied in and out).
 * Its tensor may have been disposed: check `block.live` before its bytes reach wasm.
 */
export function residentOf(array: FloatArray): Resident | null {
  return Owners.get(array) ?? null;
}
