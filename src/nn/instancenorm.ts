/** InstanceNorm1d/2d/3d (PyTorch semantics): statistics per sample and channel over the positions. */
import type { Layout } from '../core/layout.js';
import { normView } from '../core/layout.js';
import { formatShape } from '../tensor.js';
import type { InputView } from './normalization.js';
import { Normalization } from './normalization.js';
import type { CommonOptions } from './options.js';
import { checkBoolean, checkLayout, checkMomentum, checkPositiveInteger, commonKeys, readOptions, resolveCommon } from './options.js';
import { checkRankAndChannels } from './shape-check.js';

export interface InstanceNormOptions extends CommonOptions {
  /** Running-statistics update weight. Default 0.1. */
  momentum?: number;
  /** Learnable per-channel weight and bias. Default false. */
  affine?: boolean;
  /** Keep running statistics (the batch average of the instance statistics) for eval. Default false. */
  trackRunningStats?: boolean;
  /** Memory layout of inputs. Default 'channels-first'. */
  layout?: Layout;
}

class InstanceNorm extends Normalization {
  readonly numFeatures: number;
  readonly layout: Layout;
  readonly #batchedRank: number;

  constructor(name: string, batchedRank: number, numFeatures: number, options: InstanceNormOptions | undefined) {
    const given = readOptions(name, options, [...commonKeys, 'momentum', 'affine', 'trackRunningStats', 'layout']);
    const { momentum = 0.1, affine = false, trackRunningStats = false, layout = 'channels-first' } = given;
    const features = checkPositiveInteger(name, 'numFeatures', numFeatures);
    super({
      name,
      options: resolveCommon(name, given),
      momentum: checkMomentum(name, momentum, false),
      affineShape: checkBoolean(name, 'affine', affine) ? [features] : null,
      runningFeatures: checkBoolean(name, 'trackRunningStats', trackRunningStats) ? features : null,
      countsBatches: false,
    });
    this.numFeatures = features;
    this.layout = checkLayout(name, layout);
    this.#batchedRank = batchedRank;
  }

  protected inputView(shape: readonly number[]): InputView {
    const unbatched = this.#batchedRank - 1;
    checkRankAndChannels(this.name, shape, { ranks: [unbatched, this.#batchedRank] }, this.layout, this.numFeatures, unbatched);
    // an input one rank short is a single unbatched sample
    const batched = shape.length === unbatched ? [1, ...shape] : shape;
    return {
      view: normView({ kind: 'instance' }, batched, this.layout),
      singleValueMessage: `Expected more than 1 spatial element when training, got input size ${formatShape(shape)}`,
    };
  }
}

/** Input (N, C, L) or unbatched (C, L). */
export class InstanceNorm1d extends InstanceNorm {
  constructor(numFeatures: number, options?: InstanceNormOptions) {
    super('InstanceNorm1d', 3, numFeatures, options);
  }
}

/** Input (N, C, H, W) or unbatched (C, H, W). */
export class InstanceNorm2d extends InstanceNorm {
  constructor(numFeatures: number, options?: InstanceNormOptions) {
    super('InstanceNorm2d', 4, numFeatures, options);
  }
}

/** Input (N, C, D, H, W) or unbatched (C, D, H, W). */
export class InstanceNorm3d extends InstanceNorm {
  constructor(numFeatures: number, options?: InstanceNormOptions) {
    super('InstanceNorm3d', 5, numFeatures, options);
  }
}
