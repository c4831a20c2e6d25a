/**
 * The one normalization layer: BatchNorm, InstanceNorm, GroupNorm and LayerNorm differ only in
 * the view they plan for an input (core/layout.ts) and in whether they keep running statistics.
 * Every call validates all of its input before it changes any state.
 */
import type { NormView } from '../core/layout.js';
import { affineSize, reduceSize, statsCount } from '../core/layout.js';
import { nextRunningStats, updateFactor } from '../core/stats.js';
import { NormkitError } from '../errors.js';
import { backendAvailable, backends, checkBackendDtype } from '../kernels/index.js';
import type { BackendName, NormKernels } from '../kernels/types.js';
import type { DType, FloatArray, Tensor } from '../tensor.js';
import { allocate, checkTensor, dtypeOf, formatShape } from '../tensor.js';
import type { NonFinitePolicy, ResolvedOptions } from './options.js';
import type { Module, ModuleState, ModuleStateInput } from './module.js';
import { Parameter } from './parameter.js';
import { loadState } from './state.js';
import type { TrainingStepOptions, TrainingStepResult } from './training-step.js';
import { runTrainingStep } from './training-step.js';

/** PyTorch state-dict keys mapped to copies of the layer's arrays (num_batches_tracked as a number). */
export type StateDict = ModuleState;
/** What loadStateDict accepts: arrays of numbers or typed arrays, and a number for num_batches_tracked. */
export type StateDictInput = ModuleStateInput;

/** How a layer sees one input: its view, and the error text when a statistic would cover one value. */
export interface Plan {
  readonly view: NormView;
  readonly singleValueMessage: string | null;
}

export interface NormSetup {
  readonly name: string;
  readonly options: ResolvedOptions;
  /** Shape of weight and bias; null when the layer has no affine parameters. */
  readonly affineShape: readonly number[] | null;
  /** Length of running_mean and running_var; null when the layer keeps no running statistics. */
  readonly runningFeatures: number | null;
  readonly momentum: number | null;
  /** Whether training increments num_batches_tracked (BatchNorm does, InstanceNorm does not). */
  readonly countsBatches: boolean;
}

interface Cache {
  readonly x: Tensor;
  readonly view: NormView;
  readonly mean: Float64Array;
  readonly rstd: Float64Array;
  readonly batchStats: boolean;
  /** The backward of a Ghost BatchNorm or renorm training step (training-step.ts), in place of the kernel's. */
  readonly stepBackward: TrainingStepResult['backward'] | null;
}

function allFinite(values: Float64Array): boolean {
  for (const v of values) if (!Number.isFinite(v)) return false;
  return true;
}

export abstract class Normalization implements Module {
  readonly name: string;
  readonly eps: number;
  readonly momentum: number | null;
  readonly dtype: DType;
  readonly nonFinite: NonFinitePolicy;
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  #backend: BackendName;
  readonly #countsBatches: boolean;
  readonly #runningMean: FloatArray | null;
  readonly #runningVar: FloatArray | null;
  #numBatchesTracked = 0;
  #training = true;
  #cache: Cache | null = null;

  protected constructor(setup: NormSetup) {
    const { name, options } = setup;
    this.name = name;
    this.eps = options.eps;
    this.dtype = options.dtype;
    this.nonFinite = options.nonFinite;
    this.#backend = options.backend;
    this.momentum = setup.momentum;
    this.#countsBatches = setup.countsBatches;
    this.weight = setup.affineShape === null ? null : new Parameter('weight', this.dtype, setup.affineShape, 1);
    this.bias = setup.affineShape === null ? null : new Parameter('bias', this.dtype, setup.affineShape, 0);
    this.#runningMean = setup.runningFeatures === null ? null : allocate(this.dtype, setup.runningFeatures);
    this.#runningVar = setup.runningFeatures === null ? null : allocate(this.dtype, setup.runningFeatures).fill(1);
  }

  /** Checks rank and channels of an input shape and returns the view the kernels use for it. */
  protected abstract plan(shape: readonly number[]): Plan;

  /** Ghost batches or renorm for training steps (BatchNorm); null: the plain step. */
  protected trainingStep(): TrainingStepOptions | null {
    return null;
  }

  /** The view the kernels use for an input of this shape: which elements share statistics and affine entries. */
  viewOf(shape: readonly number[]): NormView {
    return this.plan(shape).view;
  }

  get training(): boolean {
    return this.#training;
  }

  get trackRunningStats(): boolean {
    return this.#runningMean !== null;
  }

  /** Live running mean (read it; change it through loadStateDict). */
  get runningMean(): FloatArray | null {
    return this.#runningMean;
  }

  get runningVar(): FloatArray | null {
    return this.#runningVar;
  }

  get numBatchesTracked(): number {
    return this.#numBatchesTracked;
  }

  get backend(): BackendName {
    return this.#backend;
  }

  /** Switches the kernel backend; the cached forward stays valid, since every backend shares one contract. */
  set backend(name: BackendName) {
    if (!(name in backends) || !backendAvailable(name)) throw new NormkitError('backend', `${this.name}: backend '${name}' is unknown or not available here`);
    checkBackendDtype(name, this.dtype, this.name);
    this.#backend = name;
  }

  train(mode = true): this {
    this.#training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  parameters(): Parameter[] {
    return this.weight === null || this.bias === null ? [] : [this.weight, this.bias];
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  private get kernels(): NormKernels {
    return backends[this.#backend];
  }

  private checkInput(t: Tensor, what: string): void {
    checkTensor(t, `${this.name}: ${what}`);
    const got = dtypeOf(t.data);
    if (got !== this.dtype) {
      throw new NormkitError('dtype', `${this.name}: expected ${what} of dtype ${this.dtype}, got ${got}`);
    }
  }

  /** An output tensor given by the caller: the input's shape and the layer's dtype (wasmTensor avoids copies). */
  private output(out: Tensor | undefined, like: Tensor, what: string): FloatArray {
    if (out === undefined) return allocate(this.dtype, like.data.length);
    this.checkInput(out, what);
    if (out.shape.length !== like.shape.length || out.shape.some((d, i) => d !== like.shape[i])) {
      throw new NormkitError('shape', `${this.name}: expected ${what} of shape ${formatShape(like.shape)}, got ${formatShape(out.shape)}`);
    }
    if (out.data === like.data) throw new NormkitError('option', `${this.name}: ${what} must not be the input itself`);
    return out.data;
  }

  /** y for x; `out` receives y instead of a new array (in place of allocation, e.g. a wasmTensor). */
  forward(x: Tensor, options: { out?: Tensor } = {}): Tensor {
    this.checkInput(x, 'input');
    const { view, singleValueMessage } = this.plan(x.shape);
    if (x.shape.includes(0)) {
      throw new NormkitError('empty', `${this.name}: input has a zero-size dimension, got input size ${formatShape(x.shape)}`);
    }
    const runningMean = this.#runningMean;
    const runningVar = this.#runningVar;
    const batchStats = this.#training || runningMean === null || runningVar === null;
    if (batchStats && singleValueMessage !== null && reduceSize(view) <= 1) {
      throw new NormkitError('single-value', singleValueMessage);
    }
    const count = statsCount(view);
    const y = this.output(options.out, x, 'out');
    const mean = new Float64Array(count);
    const rstd = new Float64Array(count);
    const w = this.weight?.data ?? null;
    const b = this.bias?.data ?? null;
    let commit: (() => void) | null = null;
    let stepBackward: TrainingStepResult['backward'] | null = null;
    const step = this.#training ? this.trainingStep() : null;
    if (step !== null) {
      const running = runningMean === null || runningVar === null ? null : { mean: runningMean, var: runningVar, numBatchesTracked: this.#numBatchesTracked };
      const { kernels, dtype, eps, momentum, nonFinite, name } = this;
      const result = runTrainingStep({ name, kernels, dtype, eps, momentum, nonFinite, y, x: x.data, shape: x.shape, view, weight: w, bias: b, running }, step);
      const next = result.next;
      stepBackward = result.backward;
      if (next !== null && runningMean !== null && runningVar !== null) {
        commit = () => {
          runningMean.set(next.runningMean);
          runningVar.set(next.runningVar);
          this.#numBatchesTracked = next.numBatchesTracked;
        };
      }
    } else if (batchStats) {
      const variance = new Float64Array(count);
      this.kernels.forwardTrain(y, x.data, view, w, b, this.eps, mean, variance, rstd);
      const finite = allFinite(mean) && allFinite(variance);
      if (!finite && this.nonFinite === 'throw') {
        throw new NormkitError(
          'non-finite',
          `${this.name}: batch statistics are not finite (NaN or Inf in the input of size ${formatShape(x.shape)})`,
        );
      }
      if (this.#training && runningMean !== null && runningVar !== null && (finite || this.nonFinite === 'propagate')) {
        const tracked = this.#numBatchesTracked + (this.#countsBatches ? 1 : 0);
        const next = nextRunningStats(runningMean, runningVar, mean, variance, view, updateFactor(this.momentum, tracked));
        commit = () => {
          runningMean.set(next.runningMean);
          runningVar.set(next.runningVar);
          this.#numBatchesTracked = tracked;
        };
      }
    } else {
      // eval with running statistics: rstd once per channel, copied to every block
      const groups = view.groups;
      for (let g = 0; g < groups; g++) rstd[g] = 1 / Math.sqrt(runningVar[g] + this.eps);
      for (let q = 0; q < count; q++) {
        mean[q] = runningMean[q % groups];
        rstd[q] = rstd[q % groups];
      }
      this.kernels.forwardWithStats(y, x.data, view, w, b, mean, rstd);
    }
    commit?.();
    this.#cache = { x, view, mean, rstd, batchStats, stepBackward };
    return options.out ?? { data: y, shape: [...x.shape] };
  }

  /**
   * dx for dy = dL/dy of the last forward; adds dL/dweight and dL/dbias into weight.grad and bias.grad.
   * `out` receives dx instead of a new array.
   */
  backward(dy: Tensor, options: { out?: Tensor } = {}): Tensor {
    const cache = this.#cache;
    if (cache === null) throw new NormkitError('no-forward', `${this.name}: backward called before forward`);
    this.checkInput(dy, 'grad_output');
    const shape = cache.x.shape;
    if (dy.shape.length !== shape.length || dy.shape.some((d, i) => d !== shape[i])) {
      throw new NormkitError(
        'grad-shape',
        `${this.name}: expected grad_output of shape ${formatShape(shape)} (the last input's), got ${formatShape(dy.shape)}`,
      );
    }
    if (options.out !== undefined && options.out.data === cache.x.data) {
      throw new NormkitError('option', `${this.name}: out must not be the cached input`);
    }
    const dx = this.output(options.out, dy, 'out');
    const n = affineSize(cache.view);
    const dweight = this.weight === null ? null : allocate(this.dtype, n);
    const dbias = this.bias === null ? null : allocate(this.dtype, n);
    const w = this.weight?.data ?? null;
    if (cache.stepBackward !== null) cache.stepBackward(dx, dweight, dbias, dy.data);
    else this.kernels.backward(dx, dweight, dbias, dy.data, cache.x.data, cache.view, w, cache.mean, cache.rstd, cache.batchStats);
    if (dweight !== null) this.weight?.accumulate(dweight);
    if (dbias !== null) this.bias?.accumulate(dbias);
    return options.out ?? { data: dx, shape: [...shape] };
  }

  /** The layer's state under PyTorch's keys, as copies. */
  stateDict(): StateDict {
    const state: StateDict = {};
    if (this.weight !== null && this.bias !== null) {
      state.weight = this.weight.data.slice();
      state.bias = this.bias.data.slice();
    }
    if (this.#runningMean !== null && this.#runningVar !== null) {
      state.running_mean = this.#runningMean.slice();
      state.running_var = this.#runningVar.slice();
      state.num_batches_tracked = this.#numBatchesTracked;
    }
    return state;
  }

  /**
   * Loads a state dict (state.ts). strict (default): missing and unexpected keys are errors; a wrong length is
   * always an error. Unless nonFinite is 'propagate', non-finite values and a negative running_var
   * are rejected. All checks run before anything is written.
   */
  loadStateDict(state: StateDictInput, options: { strict?: boolean } = {}): void {
    const arrays = new Map<string, FloatArray>();
    const counters = new Map<string, (value: number) => void>();
    if (this.weight !== null && this.bias !== null) {
      arrays.set('weight', this.weight.data);
      arrays.set('bias', this.bias.data);
    }
    if (this.#runningMean !== null && this.#runningVar !== null) {
      arrays.set('running_mean', this.#runningMean);
      arrays.set('running_var', this.#runningVar);
      counters.set('num_batches_tracked', (value) => {
        this.#numBatchesTracked = value;
      });
    }
    const finiteOnly = this.nonFinite === 'propagate' ? undefined : `this layer (nonFinite: '${this.nonFinite}')`;
    loadState(this.name, { arrays, counters, finiteOnly }, state, options.strict ?? true);
  }
}
