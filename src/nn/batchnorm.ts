/** BatchNorm1d/2d/3d (PyTorch semantics): statistics per channel over the batch and every position. */
import type { Layout } from '../core/layout.js';
import { normView } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import { formatShape } from '../tensor.js';
import { checkVirtualBatchSize } from './ghost.js';
import type { InputView } from './normalization.js';
import { Normalization } from './normalization.js';
import type { CommonOptions } from './options.js';
import { checkBoolean, checkLayout, checkMomentum, checkPositiveInteger, commonKeys, readOptions, resolveCommon } from './options.js';
import type { RenormOptions } from './renorm.js';
import { checkRenorm } from './renorm.js';
import { checkRankAndChannels } from './shape-check.js';
import type { TrainingStepOptions } from './training-step.js';

export interface BatchNormOptions extends CommonOptions {
  /** Running-statistics update weight of the batch; null for a cumulative average. Default 0.1. */
  momentum?: number | null;
  /** Learnable weight and bias. Default true. */
  affine?: boolean;
  /** Keep running statistics for eval. Default true. */
  trackRunningStats?: boolean;
  /** Memory layout of inputs. Default 'channels-first'. */
  layout?: Layout;
  /** Ghost BatchNorm: in training, one BatchNorm step per consecutive ghost batch of this many samples. Default null. */
  virtualBatchSize?: number | null;
  /** Batch Renormalization (Ioffe 2017) in training; needs trackRunningStats. Default null. */
  renorm?: RenormOptions | null;
}

/** BatchNorm over the given input ranks; `variants` says whether it takes Ghost BN and renorm (SyncBatchNorm's local layer does not). */
export class BatchNormBase extends Normalization {
  readonly numFeatures: number;
  readonly layout: Layout;
  readonly #ranks: readonly number[];
  #virtualBatchSize: number | null;
  #renorm: RenormOptions | null;

  constructor(name: string, ranks: readonly number[], numFeatures: number, options: BatchNormOptions | undefined, variants = true) {
    const keys = [...commonKeys, 'momentum', 'affine', 'trackRunningStats', 'layout', ...(variants ? ['virtualBatchSize', 'renorm'] : [])];
    const given = readOptions(name, options, keys);
    const { momentum = 0.1, affine = true, trackRunningStats = true, layout = 'channels-first' } = given;
    const virtualBatchSize = checkVirtualBatchSize(name, given.virtualBatchSize);
    const renorm = checkRenorm(name, given.renorm);
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
    this.#virtualBatchSize = virtualBatchSize;
    this.#renorm = null;
    this.renorm = renorm;
  }

  /** Ghost batch size in training (null: the whole batch). */
  get virtualBatchSize(): number | null {
    return this.#virtualBatchSize;
  }

  set virtualBatchSize(value: number | null) {
    this.#virtualBatchSize = checkVirtualBatchSize(this.name, value);
  }

  /** Batch Renormalization's clips; change them between steps to ramp them as the paper does (null: off). */
  get renorm(): RenormOptions | null {
    return this.#renorm;
  }

  set renorm(value: RenormOptions | null) {
    const renorm = checkRenorm(this.name, value);
    if (renorm !== null && !this.trackRunningStats) throw new NormkitError('option', `${this.name}: renorm needs running statistics (trackRunningStats: true)`);
    this.#renorm = renorm;
  }

  protected override trainingStep(): TrainingStepOptions | null {
    return this.#virtualBatchSize === null && this.#renorm === null ? null : { virtualBatchSize: this.#virtualBatchSize, renorm: this.#renorm };
  }

  protected inputView(shape: readonly number[]): InputView {
    checkRankAndChannels(this.name, shape, { ranks: this.#ranks }, this.layout, this.numFeatures);
    return {
      view: normView({ kind: 'batch' }, shape, this.layout),
      singleValueMessage: `Expected more than 1 value per channel when training, got input size ${formatShape(shape)}`,
    };
  }
}

/** Input (N, C) or (N, C, L); channels-last (N, L, C). */
export class BatchNorm1d extends BatchNormBase {
  constructor(numFeatures: number, options?: BatchNormOptions) {
    super('BatchNorm1d', [2, 3], numFeatures, options);
  }
}

/** Input (N, C, H, W); channels-last (N, H, W, C). */
export class BatchNorm2d extends BatchNormBase {
  constructor(numFeatures: number, options?: BatchNormOptions) {
    super('BatchNorm2d', [4], numFeatures, options);
  }
}

/** Input (N, C, D, H, W); channels-last (N, D, H, W, C). */
export class BatchNorm3d extends BatchNormBase {
  constructor(numFeatures: number, options?: BatchNormOptions) {
    super('BatchNorm3d', [5], numFeatures, options);
  }
}
