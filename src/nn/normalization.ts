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
import type { DType, FloatArray, OwnedTensor, Tensor } from '../tensor.js';
import { allocate, checkTensor, dtypeOf, emptyTensor, formatShape, ownedTensor } from '../tensor.js';
import type { NonFinitePolicy, ResolvedOptions } from './options.js';
import type { Module, ModuleState, ModuleStateInput } from './module.js';
import { Parameter } from './parameter.js';

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
}

function isArrayLike(value: unknown): value is ArrayLike<unknown> {
  return typeof value === 'object' && value !== null && 'length' in value && typeof value.length === 'number';
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

  /**
   * The output: the caller's `out` (the input's shape and the layer's dtype), else a new tensor, in wasm
   * memory when this layer runs on wasm there (dispose() returns it; see tensor.ts).
   */
  private output(out: Tensor | undefined, like: Tensor, what: string): Tensor {
    if (out === undefined) return this.#backend === 'wasm' ? emptyTensor(this.dtype, like.shape) : ownedTensor(allocate(this.dtype, like.data.length), [...like.shape]);
    this.checkInput(out, what);
    if (out.shape.length !== like.shape.length || out.shape.some((d, i) => d !== like.shape[i])) {
      throw new NormkitError('shape', `${this.name}: expected ${what} of shape ${formatShape(like.shape)}, got ${formatShape(out.shape)}`);
    }
    if (out.data === like.data) throw new NormkitError('option', `${this.name}: ${what} must not be the input itself`);
    return out;
  }

  /** y for x; `out` receives y instead of a new array (in place of allocation, e.g. a wasmTensor). */
  forward(x: Tensor): OwnedTensor;
  forward(x: Tensor, options: { out?: Tensor }): Tensor;
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
    const output = this.output(options.out, x, 'out');
    const y = output.data;
    const mean = new Float64Array(count);
    const rstd = new Float64Array(count);
    const w = this.weight?.data ?? null;
    const b = this.bias?.data ?? null;
    let commit: (() => void) | null = null;
    if (batchStats) {
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
    this.#cache = { x, view, mean, rstd, batchStats };
    return output;
  }

  /**
   * dx for dy = dL/dy of the last forward; adds dL/dweight and dL/dbias into weight.grad and bias.grad.
   * `out` receives dx instead of a new array.
   */
  backward(dy: Tensor): OwnedTensor;
  backward(dy: Tensor, options: { out?: Tensor }): Tensor;
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
    const output = this.output(options.out, dy, 'out');
    const dx = output.data;
    const n = affineSize(cache.view);
    const dweight = this.weight === null ? null : allocate(this.dtype, n);
    const dbias = this.bias === null ? null : allocate(this.dtype, n);
    const w = this.weight?.data ?? null;
    this.kernels.backward(dx, dweight, dbias, dy.data, cache.x.data, cache.view, w, cache.mean, cache.rstd, cache.batchStats);
    if (dweight !== null) this.weight?.accumulate(dweight);
    if (dbias !== null) this.bias?.accumulate(dbias);
    return output;
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

  private stateTargets(): Map<string, FloatArray> {
    const targets = new Map<string, FloatArray>();
    if (this.weight !== null && this.bias !== null) {
      targets.set('weight', this.weight.data);
      targets.set('bias', this.bias.data);
    }
    if (this.#runningMean !== null && this.#runningVar !== null) {
      targets.set('running_mean', this.#runningMean);
      targets.set('running_var', this.#runningVar);
    }
    return targets;
  }

  /**
   * Loads a state dict. strict (default): missing and unexpected keys are errors; a wrong length is
   * always an error. Unless nonFinite is 'propagate', non-finite values and a negative running_var
   * are rejected. All checks run before anything is written.
   */
  loadStateDict(state: StateDictInput, options: { strict?: boolean } = {}): void {
    const strict = options.strict ?? true;
    const fail: (why: string) => never = (why) => {
      throw new NormkitError('state-dict', `Error(s) in loading state_dict for ${this.name}: ${why}`);
    };
    const targets = this.stateTargets();
    const keys = [...targets.keys()];
    if (this.#runningMean !== null) keys.push('num_batches_tracked');
    if (strict) {
      const missing = keys.filter((k) => !(k in state));
      const unexpected = Object.keys(state).filter((k) => !keys.includes(k));
      const parts: string[] = [];
      if (missing.length > 0) parts.push(`Missing key(s) in state_dict: ${missing.map((k) => `"${k}"`).join(', ')}.`);
      if (unexpected.length > 0) parts.push(`Unexpected key(s) in state_dict: ${unexpected.map((k) => `"${k}"`).join(', ')}.`);
      if (parts.length > 0) fail(parts.join(' '));
    }
    const writes: (() => void)[] = [];
    for (const [key, target] of targets) {
      if (!(key in state)) continue;
      // a JavaScript caller can pass anything: check as unknown
      const value: unknown = state[key];
      if (!isArrayLike(value)) return fail(`${key} must be an array of numbers`);
      const values = value;
      const checked = new Float64Array(values.length);
      if (values.length !== target.length) {
        fail(`size mismatch for ${key}: copying a param with shape [${values.length}] from checkpoint, the shape in current model is [${target.length}].`);
      }
      for (let i = 0; i < values.length; i++) {
        const v: unknown = values[i];
        if (typeof v !== 'number') return fail(`${key}[${i}] is not a number`);
        if (this.nonFinite !== 'propagate' && !Number.isFinite(v)) {
          fail(`${key}[${i}] is ${v}, and this layer (nonFinite: '${this.nonFinite}') accepts finite values only`);
        }
        if (this.nonFinite !== 'propagate' && key === 'running_var' && v < 0) fail(`running_var[${i}] is negative (${v})`);
        checked[i] = v;
      }
      writes.push(() => {
        target.set(checked);
      });
    }
    if ('num_batches_tracked' in state && this.#runningMean !== null) {
      const tracked: unknown = state.num_batches_tracked;
      if (typeof tracked !== 'number' || !Number.isInteger(tracked) || tracked < 0) {
        return fail(`num_batches_tracked must be a non-negative integer, got ${JSON.stringify(tracked)}`);
      }
      writes.push(() => {
        this.#numBatchesTracked = tracked;
      });
    }
    for (const write of writes) write();
  }
}
