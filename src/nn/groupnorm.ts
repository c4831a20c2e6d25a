/** GroupNorm (PyTorch semantics): statistics per sample over each group of channels and every position. */
import type { Layout } from '../core/layout.js';
import { normView } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import type { InputView } from './normalization.js';
import { Normalization } from './normalization.js';
import type { CommonOptions } from './options.js';
import { checkBoolean, checkLayout, checkPositiveInteger, commonKeys, readOptions, resolveCommon } from './options.js';
import { checkRankAndChannels } from './shape-check.js';

export interface GroupNormOptions extends CommonOptions {
  /** Learnable per-channel weight and bias. Default true. */
  affine?: boolean;
  /** Memory layout of inputs. Default 'channels-first'. */
  layout?: Layout;
}

/** Input (N, C, ...); channels-last (N, ..., C). */
export class GroupNorm extends Normalization {
  readonly numGroups: number;
  readonly numChannels: number;
  readonly layout: Layout;

  constructor(numGroups: number, numChannels: number, options?: GroupNormOptions) {
    const name = 'GroupNorm';
    const given = readOptions(name, options, [...commonKeys, 'affine', 'layout']);
    const { affine = true, layout = 'channels-first' } = given;
    const groups = checkPositiveInteger(name, 'numGroups', numGroups);
    const channels = checkPositiveInteger(name, 'numChannels', numChannels);
    if (channels % groups !== 0) throw new NormkitError('option', 'num_channels must be divisible by num_groups');
    super({
      name,
      options: resolveCommon(name, given),
      momentum: null,
      affineShape: checkBoolean(name, 'affine', affine) ? [channels] : null,
      runningFeatures: null,
      countsBatches: false,
    });
    this.numGroups = groups;
    this.numChannels = channels;
    this.layout = checkLayout(name, layout);
  }

  protected inputView(shape: readonly number[]): InputView {
    checkRankAndChannels(this.name, shape, { atLeast: 2 }, this.layout, this.numChannels);
    return { view: normView({ kind: 'group', groups: this.numGroups }, shape, this.layout), singleValueMessage: null };
  }
}
