/**
 * FrozenBatchNorm2d (torchvision.ops.FrozenBatchNorm2d): BatchNorm2d with fixed statistics and affine,
 * all four buffers, no parameters. y = x*scale + shift with scale = weight/sqrt(running_var + eps),
 * shift = bias - running_mean*scale; backward dx = dy*scale. Loads a BatchNorm2d state dict
 * (num_batches_tracked is dropped, as torchvision does).
 */
import type { Layout } from '../core/layout.js';
import { normView } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import { backends } from '../kernels/index.js';
import type { BackendName } from '../kernels/contract.js';
import type { DType, FloatArray, Tensor } from '../tensor.js';
import { allocate, dtypeOf, formatShape, readTensor } from '../tensor.js';
import { checkUsable } from '../core/memory.js';
import { checkLayerBytes } from './limits.js';
import type { Module, ModuleState, ModuleStateInput } from './module.js';
import { checkLayout, checkPositiveInteger, readOptions, resolveCommon } from './options.js';
import type { CommonOptions } from './options.js';
import type { Parameter } from './parameter.js';
import { checkRankAndChannels } from './shape-check.js';
import { loadState, readStrict } from './state.js';

export interface FrozenBatchNormOptions extends Omit<CommonOptions, 'nonFinite'> {
  /** Memory layout of inputs. Default 'channels-first'. */
  layout?: Layout;
}

export class FrozenBatchNorm2d implements Module {
  readonly name = 'FrozenBatchNorm2d';
  readonly numFeatures: number;
  readonly eps: number;
  readonly dtype: DType;
  readonly layout: Layout;
  readonly backend: BackendName;
  /** Buffers (not parameters): change them through loadStateDict or in place. */
  readonly weight: FloatArray;
  readonly bias: FloatArray;
  readonly runningMean: FloatArray;
  readonly runningVar: FloatArray;
  #cache: { x: Tensor; mean: Float64Array; rstd: Float64Array } | null = null;

  constructor(numFeatures: number, options?: FrozenBatchNormOptions) {
    this.numFeatures = checkPositiveInteger(this.name, 'numFeatures', numFeatures);
    const given = readOptions(this.name, options, ['eps', 'dtype', 'backend', 'layout']);
    const { eps, dtype, backend } = resolveCommon(this.name, given);
    this.eps = eps;
    this.dtype = dtype;
    this.backend = backend;
    this.layout = checkLayout(this.name, given.layout ?? 'channels-first');
    checkLayerBytes(this.name, [numFeatures, numFeatures, numFeatures, numFeatures], dtype);
    this.weight = allocate(dtype, numFeatures).fill(1);
    this.bias = allocate(dtype, numFeatures);
    this.runningMean = allocate(dtype, numFeatures);
    this.runningVar = allocate(dtype, numFeatures).fill(1);
  }

  /** `t` read once (readTensor: a plain view and a copy of its shape, not disposed) in the layer's dtype. */
  #read(t: unknown, what: string): Tensor {
    const read = readTensor(t, `${this.name}: ${what}`);
    const got = dtypeOf(read.data);
    if (got !== this.dtype) throw new NormkitError('dtype', `${this.name}: expected ${what} of dtype ${this.dtype}, got ${got}`);
    return read;
  }

  forward(x: Tensor): Tensor {
    const input = this.#read(x, 'input');
    checkRankAndChannels(this.name, input.shape, { ranks: [4] }, this.layout, this.numFeatures);
    const mean = Float64Array.from(this.runningMean);
    // rstd = 1/sqrt(running_var + eps), once per channel; the kernel forms scale = weight*rstd
    const rstd = Float64Array.from(this.runningVar, (v) => 1 / Math.sqrt(v + this.eps));
    const y = allocate(this.dtype, input.data.length);
    backends[this.backend].forwardWithStats(y, input.data, normView({ kind: 'batch' }, input.shape, this.layout), this.weight, this.bias, mean, rstd);
    this.#cache = { x: input, mean, rstd };
    return { data: y, shape: [...input.shape] };
  }

  /** dx = dy*scale; there is nothing to accumulate. */
  backward(dy: Tensor): Tensor {
    const cache = this.#cache;
    if (cache === null) throw new NormkitError('no-forward', `${this.name}: backward called before forward`);
    const grad = this.#read(dy, 'grad_output');
    const shape = cache.x.shape;
    if (grad.shape.length !== shape.length || grad.shape.some((d, i) => d !== shape[i])) {
      throw new NormkitError('grad-shape', `${this.name}: expected grad_output of shape ${formatShape(shape)} (the last input's), got ${formatShape(grad.shape)}`);
    }
    checkUsable(cache.x.data, `${this.name}: the input saved by forward`);
    const dx = allocate(this.dtype, grad.data.length);
    const view = normView({ kind: 'batch' }, shape, this.layout);
    backends[this.backend].backward(dx, null, null, grad.data, cache.x.data, view, this.weight, cache.mean, cache.rstd, false);
    return { data: dx, shape: [...shape] };
  }

  parameters(): Parameter[] {
    return [];
  }

  zeroGrad(): void {
    // no parameters
  }

  stateDict(): ModuleState {
    return { weight: this.weight.slice(), bias: this.bias.slice(), running_mean: this.runningMean.slice(), running_var: this.runningVar.slice() };
  }

  /** Loads its four buffers, or a BatchNorm2d state dict (num_batches_tracked ignored). */
  loadStateDict(state: ModuleStateInput, options?: { strict?: boolean }): void {
    const arrays = new Map<string, FloatArray>([
      ['weight', this.weight],
      ['bias', this.bias],
      ['running_mean', this.runningMean],
      ['running_var', this.runningVar],
    ]);
    loadState(this.name, { arrays, ignored: ['num_batches_tracked'], finiteOnly: 'FrozenBatchNorm2d' }, state, readStrict(this.name, options));
  }
}
