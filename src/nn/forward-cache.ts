/**
 * What backward needs from the last forward, versioned: x and weight are saved (saved.ts) at version 0, and
 * backward refuses where normkit wrote either since. Two mean/rstd pairs alternate: the cache holds one,
 * the next forward writes the other, so the cache stays whole if that forward throws.
 */
import type { NormView } from '../core/layout.js';
import type { FloatArray } from '../core/float.js';
import { NormkitError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { formatShape } from '../tensor.js';
import type { Saved } from './saved.js';
import { resave, save } from './saved.js';
import type { TrainingStepResult } from './training-step.js';

export interface LastForward {
  readonly x: Tensor;
  /** x and weight as forward saw them: backward refuses if normkit wrote either since */
  readonly saved: Saved[];
  readonly view: NormView;
  readonly mean: Float64Array;
  readonly rstd: Float64Array;
  readonly batchStats: boolean;
  /** The backward of a Ghost BatchNorm or renorm training step (training-step.ts), in place of the kernel's. */
  readonly stepBackward: TrainingStepResult['backward'] | null;
}

export class ForwardCache {
  #last: LastForward | null = null;
  #spareMean: Float64Array | null = null;
  #spareRstd: Float64Array | null = null;

  get last(): LastForward | null {
    return this.#last;
  }

  /** mean and rstd arrays of `count` values the cache does not hold, for the next forward to write. */
  spares(count: number): { readonly mean: Float64Array; readonly rstd: Float64Array } {
    if (this.#spareMean?.length !== count || this.#spareRstd?.length !== count) {
      this.#spareMean = new Float64Array(count);
      this.#spareRstd = new Float64Array(count);
    }
    return { mean: this.#spareMean, rstd: this.#spareRstd };
  }

  /**
   * The forward just run becomes the cache: x and weight saved at version 0 (the last cache's Saved
   * objects reused in place of release and save: a layer's weight is there or not for good), and the last
   * cache's statistics become the spare pair.
   */
  commit(x: Tensor, w: FloatArray | null, view: NormView, mean: Float64Array, rstd: Float64Array, batchStats: boolean, stepBackward: LastForward['stepBackward']): void {
    const old = this.#last;
    let saved: Saved[];
    if (old !== null) {
      saved = old.saved;
      resave(saved[0], x.data);
      if (w !== null) resave(saved[1], w);
    } else {
      saved = w === null ? [save(x.data)] : [save(x.data), save(w)];
    }
    this.#spareMean = old?.mean ?? null;
    this.#spareRstd = old?.rstd ?? null;
    this.#last = { x, saved, view, mean, rstd, batchStats, stepBackward };
  }
}

/** A 'modified' NormkitError (PyTorch's wording) where x or weight was written since `last` saved them. */
export function checkUnmodified(name: string, last: LastForward): void {
  const changed = last.saved.find((saved) => saved.version !== 0);
  if (changed === undefined) return;
  const what = changed.data === last.x.data ? `the input of size ${formatShape(last.x.shape)}` : `weight of size [${changed.data.length}]`;
  throw new NormkitError(
    'modified',
    `${name}: one of the variables needed for gradient computation has been modified by an inplace operation: ${what} saved by forward is at version ${changed.version}; expected version 0 instead. Run forward again after changing it.`,
  );
}
