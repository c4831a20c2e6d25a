/** BatchNorm1d/2d/3d (PyTorch semantics): statistics per channel over the batch and every position. */
import type { Layout } from '../core/layout.js';
import { normView } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import type { FloatArray } from '../tensor.js';
import { formatShape } from '../tensor.js';
import type { GhostSplit } from './ghost.js';
import { checkGhostSplit, checkVirtualBatchSize } from './ghost.js';
import type { InputView, StateDict, StateDictInput } from './normalization.js';
import { Normalization } from './normalization.js';
import type { CommonOptions } from './options.js';
import { checkBoolean, checkLayout, checkMomentum, checkPositiveInteger, commonKeys, readOptions, resolveCommon } from './options.js';
import type { KerasRenormState } from './keras-renorm.js';
import type { Renorm, RenormOptions } from './renorm.js';
import { checkRenorm } from './renorm.js';
import { checkRankAndChannels } from './shape-check.js';
import { loadState, readStrict } from './state.js';
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
  /**
   * How virtualBatchSize splits a batch: 'fixed' (ghost batches of v samples, the last may be smaller) or
   * 'chunk' (TabNet's GhostBatchNorm, x.chunk(ceil(N / v)): ghost batches of ceil(N / ceil(N / v)) samples). Default 'fixed'.
   */
  ghostSplit?: GhostSplit;
  /**
   * Batch Renormalization (Ioffe 2017) in training; needs trackRunningStats. `{ rmax, dmax }`: normkit's
   * PyTorch-style renorm; `{ convention: 'keras', rmin, rmax, dmax, momentum, renormMomentum }`: Keras 3's,
   * with Keras's variables and state-dict keys (docs/parity.md). Default null.
   */
  renorm?: RenormOptions | null;
}

/** BatchNorm over the given input ranks; `variants` says whether it takes Ghost BN and renorm (SyncBatchNorm's local layer does not). */
export class BatchNormBase extends Normalization {
  readonly numFeatures: number;
  readonly layout: Layout;
  readonly #ranks: readonly number[];
  #virtualBatchSize: number | null;
  #ghostSplit: GhostSplit;
  #renorm: Renorm | null;
  /** Keras renorm's variables beside moving_mean/moving_variance; null unless built with renorm { convention: 'keras' }. */
  readonly #keras: KerasRenormState | null;

  constructor(name: string, ranks: readonly number[], numFeatures: number, options: BatchNormOptions | undefined, variants = true) {
    const keys = [...commonKeys, 'momentum', 'affine', 'trackRunningStats', 'layout', ...(variants ? ['virtualBatchSize', 'ghostSplit', 'renorm'] : [])];
    const given = readOptions(name, options, keys);
    const { momentum = 0.1, affine = true, trackRunningStats = true, layout = 'channels-first' } = given;
    const virtualBatchSize = checkVirtualBatchSize(name, given.virtualBatchSize);
    const ghostSplit = checkGhostSplit(name, given.ghostSplit);
    const renorm = checkRenorm(name, given.renorm);
    if (renorm?.convention === 'keras' && given.momentum !== undefined) {
      throw new NormkitError('option', `${name}: with renorm { convention: 'keras' } give Keras's momentum inside renorm (it weighs the old value), not the layer's momentum (PyTorch's, the weight of the batch)`);
    }
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
    this.#ghostSplit = ghostSplit;
    this.#renorm = null;
    const running = this.runningVar;
    // Keras's initial values: moving_stddev and renorm_stddev sqrt(moving_variance), renorm_mean moving_mean
    this.#keras =
      renorm?.convention === 'keras' && running !== null
        ? { movingStddev: running.map(Math.sqrt), renormMean: running.map(() => 0), renormStddev: running.map(Math.sqrt) }
        : null;
    this.renorm = renorm;
  }

  /** Ghost batch size in training (null: the whole batch). */
  get virtualBatchSize(): number | null {
    return this.#virtualBatchSize;
  }

  set virtualBatchSize(value: number | null) {
    this.#virtualBatchSize = checkVirtualBatchSize(this.name, value);
  }

  /** How virtualBatchSize splits a batch ('fixed' or TabNet's 'chunk'). */
  get ghostSplit(): GhostSplit {
    return this.#ghostSplit;
  }

  set ghostSplit(value: GhostSplit) {
    this.#ghostSplit = checkGhostSplit(this.name, value);
  }

  /** Batch Renormalization's clips; change them between steps to ramp them as the paper does (null: off). */
  get renorm(): Renorm | null {
    return this.#renorm;
  }

  set renorm(value: RenormOptions | null) {
    const renorm = checkRenorm(this.name, value);
    if (renorm !== null && !this.trackRunningStats) throw new NormkitError('option', `${this.name}: renorm needs running statistics (trackRunningStats: true)`);
    // the convention decides the layer's variables and state-dict keys: fixed at construction
    if ((renorm?.convention === 'keras') !== (this.#keras !== null)) {
      const built = this.#keras !== null ? "with renorm { convention: 'keras' } (change its clips and momenta, not its convention)" : 'without Keras renorm';
      throw new NormkitError('option', `${this.name}: this layer was built ${built}; renorm ${JSON.stringify(value)} needs a new layer`);
    }
    this.#renorm = renorm;
  }

  /** Keras renorm's moving_stddev, renorm_mean and renorm_stddev (live; null without Keras renorm). */
  get kerasRenormState(): KerasRenormState | null {
    return this.#keras;
  }

  /** Under Keras renorm, Keras's variable names (gamma, beta, moving_mean, moving_variance, moving_stddev, renorm_mean, renorm_stddev); PyTorch's otherwise. */
  override stateDict(): StateDict {
    const keras = this.#keras;
    if (keras === null) return super.stateDict();
    return Object.fromEntries([...this.#kerasArrays(keras)].map(([key, data]) => [key, data.slice()]));
  }

  override loadStateDict(state: StateDictInput, options?: { strict?: boolean }): void {
    const keras = this.#keras;
    if (keras === null) {
      super.loadStateDict(state, options);
      return;
    }
    const finiteOnly = this.nonFinite === 'propagate' ? undefined : `this layer (nonFinite: '${this.nonFinite}')`;
    loadState(this.name, { arrays: this.#kerasArrays(keras), finiteOnly }, state, readStrict(this.name, options));
  }

  /** Keras's variables by name, the layer's live arrays. */
  #kerasArrays(keras: KerasRenormState): Map<string, FloatArray> {
    const arrays = new Map<string, FloatArray>();
    if (this.weight !== null && this.bias !== null) {
      arrays.set('gamma', this.weight.data);
      arrays.set('beta', this.bias.data);
    }
    if (this.runningMean !== null && this.runningVar !== null) {
      arrays.set('moving_mean', this.runningMean);
      arrays.set('moving_variance', this.runningVar);
    }
    arrays.set('moving_stddev', keras.movingStddev);
    arrays.set('renorm_mean', keras.renormMean);
    arrays.set('renorm_stddev', keras.renormStddev);
    return arrays;
  }

  /** BatchNorm takes a forward mask: statistics over the valid positions only (masked.ts). */
  protected override maskLayout(): Layout {
    return this.layout;
  }

  protected override trainingStep(): TrainingStepOptions | null {
    return this.#virtualBatchSize === null && this.#renorm === null ? null : { virtualBatchSize: this.#virtualBatchSize, ghostSplit: this.#ghostSplit, renorm: this.#renorm, kerasState: this.#keras };
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
