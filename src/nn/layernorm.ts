/** LayerNorm (PyTorch semantics): statistics over the trailing normalizedShape dimensions of each row. */
import { normView } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import { describeValue, formatShape, maxElements, numel } from '../tensor.js';
import type { InputView } from './normalization.js';
import { Normalization } from './normalization.js';
import type { CommonOptions } from './options.js';
import { checkBoolean, checkPositiveInteger, commonKeys, readOptions, resolveCommon } from './options.js';

export interface LayerNormOptions extends CommonOptions {
  /** Learnable weight and bias of shape normalizedShape. Default true. */
  elementwiseAffine?: boolean;
}

export class LayerNorm extends Normalization {
  readonly normalizedShape: readonly number[];

  constructor(normalizedShape: number | readonly number[], options?: LayerNormOptions) {
    const name = 'LayerNorm';
    // a JavaScript caller can pass anything: check as unknown
    const shape: unknown = normalizedShape;
    if (typeof shape !== 'number' && !Array.isArray(shape)) {
      throw new NormkitError('option', `${name}: normalizedShape must be a positive integer or an array of them, got ${describeValue(shape)}`);
    }
    const given: unknown[] = typeof shape === 'number' ? [shape] : [...(shape as unknown[])];
    if (given.length === 0) throw new NormkitError('option', `${name}: normalizedShape must have at least one dimension`);
    const dims = given.map((d) => checkPositiveInteger(name, 'every normalizedShape dimension', d));
    if (numel(dims) > maxElements) throw new NormkitError('size', `${name}: normalizedShape ${formatShape(dims)} has more than ${maxElements} elements`);
    const opts = readOptions(name, options, [...commonKeys, 'elementwiseAffine']);
    const { elementwiseAffine = true } = opts;
    super({
      name,
      options: resolveCommon(name, opts),
      momentum: null,
      affineShape: checkBoolean(name, 'elementwiseAffine', elementwiseAffine) ? dims : null,
      runningFeatures: null,
      countsBatches: false,
    });
    this.normalizedShape = dims;
  }

  protected inputView(shape: readonly number[]): InputView {
    const dims = this.normalizedShape;
    const tail = shape.slice(shape.length - dims.length);
    if (shape.length < dims.length || tail.some((d, i) => d !== dims[i])) {
      throw new NormkitError(
        'shape',
        `Given normalized_shape=${formatShape(dims)}, expected input with shape [*, ${dims.join(', ')}], but got input of size${formatShape(shape)}`,
      );
    }
    return { view: normView({ kind: 'layer', normalizedRank: dims.length }, shape, 'channels-first'), singleValueMessage: null };
  }
}
