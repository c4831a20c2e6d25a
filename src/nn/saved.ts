/**
 * Inputs saved for backward and the writes that would invalidate them (PyTorch's version counters).
 * normkit cannot see a caller's own writes through `.data`, but it counts its own: outputs written by
 * forward/backward, parameters changed by optimizers and loadStateDict. A write bumps the version of every
 * saved array it overlaps; backward compares the version with the one forward saw.
 */
import { overlaps } from '../core/typed.js';
import type { FloatArray } from '../core/float.js';

/** An array saved by a forward call, with the number of normkit writes that have touched it since. */
export class Saved {
  /** changes only through resave, when the layer's next forward replaces what it saved */
  data: FloatArray;
  version = 0;
  /** how the watch list holds it: weakly */
  readonly ref: WeakRef<Saved>;

  constructor(data: FloatArray) {
    this.data = data;
    this.ref = new WeakRef(this);
  }
}

/**
 * Saved arrays per buffer: only what some layer still needs for backward is watched, held weakly so a
 * layer dropped without another forward is not kept alive (wasm memory's buffer lives for good).
 */
const watched = new WeakMap<ArrayBufferLike, Set<WeakRef<Saved>>>();

/** Puts `saved` on the watch list of its array's buffer. */
function watch(saved: Saved): void {
  const refs = watched.get(saved.data.buffer) ?? new Set<WeakRef<Saved>>();
  refs.add(saved.ref);
  watched.set(saved.data.buffer, refs);
}

/** Starts watching `data` for normkit writes (`resave` moves the watch when the layer's cache moves on). */
export function save(data: FloatArray): Saved {
  const saved = new Saved(data);
  watch(saved);
  return saved;
}

function release(saved: Saved): void {
  watched.get(saved.data.buffer)?.delete(saved.ref);
}

/**
 * release(saved) then save(data), reusing the object and its WeakRef (a WeakRef per call costs more than
 * a small call's kernels): `saved` must be unreachable but for its new owner once this returns.
 */
export function resave(saved: Saved, data: FloatArray): Saved {
  const moved = saved.data.buffer !== data.buffer;
  if (moved) release(saved);
  saved.data = data;
  if (moved) watch(saved);
  saved.version = 0;
  return saved;
}

/** Records that normkit wrote `data`: every saved array sharing memory with it moves to its next version. */
export function noteWrite(data: ArrayBufferView): void {
  const refs = watched.get(data.buffer);
  if (refs === undefined) return;
  for (const ref of refs) {
    const saved = ref.deref();
    if (saved === undefined) refs.delete(ref);
    else if (overlaps(saved.data, data)) saved.version++;
  }
}
