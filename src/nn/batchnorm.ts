/** BatchNorm1d/2d/3d (PyTorch semantics): statistics per channel over the batch and every position. */
import type { Layout } from '../core/layout.js';
import { normView, splitChannels } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import { formatShape } from '../tensor.js';
import type { Plan } from './normalization.js';
import { Normalization } from './normalization.js';
import type { CommonOptions } from './options.js';
import { checkBoolean, checkLayout, checkMomentum, checkPositiveInteger, commonKeys, readOptions, resolveCommon } from './options.js';

export interface BatchNormOptions extends CommonOptions {
  /** Running-statistics update weight of the batch; null for a cumulative average. Default 0.1. */
  momentum?: number | null;
  /** Learnable weight and bias. Default true. */
  affine?: boolean;
  /** Keep running statistics for eval. Default true. */
  trackRunningStats?: boolean;
  /** Memory layout of inputs. Default 'channels-first'. */
  layout?: Layout;
}

/** `expected 2D or 3D input`, as PyTorch words it. */
export function rankText(ranks: readonly number[]): string {
  return ranks.map((r) => `${r}D`).join(' or ');
}

class BatchNorm extends Normalization {
  readonly numFeatures: number;
  readonly layout: Layout;
  readonly #ranks: readonly number[];

  constructor(name: string, ranks: readonly number[], numFeatures: number, options: BatchNormOptions | undefined) {
    const given = readOptions(name, options, [...commonKeys, 'momentum', 'affine', 'trackRunningStats', 'layout']);
    const { momentum = 0.1, affine = true, trackRunningStats = true, layout = 'channels-first' } = given;
    const features = checkPositiveInteger(name, 'numFeatures', numFeatures);
    super({
      name,
      options: resolveCommon(name, given),
      momentum: checkMomentum(name, momentum, true),
      affineShape: checkBoolean(name, 'affine', affine) ? [features] : null,
      runningFeatures: checkBoolean(name, 'trackRunningStats', trackRunningStats) ? features : null,
      countsBatches: true,
    });
    this.numFeatures = features;
    this.layout = checkLayout(name, layout);
    this.#ranks = ranks;
  }

  protected plan(shape: readonly number[]): Plan {
    if (!this.#ranks.includes(shape.length)) {
      throw new NormkitError('rank', `${this.name}: expected ${rankText(this.#ranks)} input (got ${shape.length}D input)`);
    }
    const { c } = splitChannels(shape, this.layout);
    if (c !== this.numFeatures) {
      throw new NormkitError(
        'channels',
        `${this.name}: expected ${this.numFeatures} channels (${this.layout}), got ${c} in input of size ${formatShape(shape)}`,
      );
    }
    return {
      view: normView({ kind: 'batch' }, shape, this.layout),
      singleValueMessage: `Expected more than 1 value per channel when training, got input size ${formatShape(shape)}`,
    };
  }
}

/** Input (N, C) or (N, C, L); channels-last (N, L, C). */
export class BatchNorm1d extends BatchNorm {
  constructor(numFeatures: number, options?: BatchNormOptions) {
    super('BatchNorm1d', [2, 3], numFeatures, options);
  }
}

/** Input (N, C, H, W); channels-last (N, H, W, C). */
export class BatchNorm2d extends BatchNorm {
  constructor(numFeatures: number, options?: BatchNormOptions) {
    super('BatchNorm2d', [4], numFeatures, options);
  }
}

/** Input (N, C, D, H, W); channels-last (N, D, H, W, C). */
export class BatchNorm3d extends BatchNorm {
  constructor(numFeatures: number, options?: BatchNormOptions) {
    super('BatchNorm3d', [5], numFeatures, options);
  }
}
