/**
 * The one normalization layer: BatchNorm, InstanceNorm, GroupNorm and LayerNorm differ only in
 * the view they plan for an input (core/layout.ts) and in whether they keep running statistics.
 * Every call validates all of its input before it changes any state.
 */
import type { NormView } from '../core/layout.js';
import { affineSize, reduceSize, statsCount } from '../core/layout.js';
import { nextRunningStats, updateFactor } from '../core/stats.js';
import { NormkitError } from '../errors.js';
import { backendAvailable, backends, checkBackendDtype, isBackendName } from '../kernels/index.js';
import type { BackendName, NormKernels } from '../kernels/types.js';
import type { DType, FloatArray, OwnedTensor, Tensor } from '../tensor.js';
import { allocate, describeValue, dtypeOf, emptyTensor, formatShape, ownedTensor, readTensor } from '../tensor.js';
import { overlaps } from '../core/typed.js';
import { checkUsable } from '../core/memory.js';
import { checkLayerBytes, layerArrays } from './limits.js';
import type { Saved } from './saved.js';
import { noteWrite, resave, save } from './saved.js';
import type { NonFinitePolicy, ResolvedOptions } from './options.js';
import type { Module, ModuleState, ModuleStateInput } from './module.js';
import { Parameter } from './parameter.js';
import { loadState, readStrict } from './state.js';
import type { RunningAfter, TrainingStepOptions, TrainingStepResult } from './training-step.js';
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
  /** x and weight as forward saw them: backward refuses if normkit wrote either since */
  readonly saved: Saved[];
  readonly view: NormView;
  readonly mean: Float64Array;
  readonly rstd: Float64Array;
  readonly batchStats: boolean;
  /** The backward of a Ghost BatchNorm or renorm training step (training-step.ts), in place of the kernel's. */
  readonly stepBackward: TrainingStepResult['backward'] | null;
}

function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

/** Whether every value stays finite once rounded to float32 (as a Float32Array would store it). */
function allFiniteF32(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(Math.fround(values[i]))) return false;
  return true;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Per-call arrays a layer keeps for the next call of the same view (a small call would spend more allocating them than computing). */
interface Scratch {
  readonly variance: Float64Array;
  /** the running statistics a training batch would leave (G values each) */
  readonly next: { readonly runningMean: Float64Array; readonly runningVar: Float64Array };
  readonly dweight: FloatArray;
  readonly dbias: FloatArray;
}

/** The `{ out }` options of forward and backward, checked (a JavaScript caller can pass anything). */
function readCallOptions(name: string, options: unknown, what: string): { out?: unknown } {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new NormkitError('option', `${name}: ${what} options must be an object like { out }, got ${describeValue(options)}`);
  }
  const given: Readonly<Record<string, unknown>> = { ...options };
  const unexpected = Object.keys(given).find((k) => k !== 'out');
  if (unexpected !== undefined) throw new NormkitError('option', `${name}: unexpected ${what} option '${unexpected}'; ${what} takes out`);
  return 'out' in given && given.out !== undefined ? { out: given.out } : {};
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
  /** The plan of the last input shape (plan() depends on the shape only), so a loop over one shape plans once. */
  #planShape: readonly number[] | null = null;
  #plan: Plan | null = null;
  /** mean and rstd arrays the cache does not hold: the next forward writes them (state stays whole if it throws). */
  #spareMean: Float64Array | null = null;
  #spareRstd: Float64Array | null = null;
  #scratch: Scratch | null = null;
  /** What readTensor names in its errors, made once (not a string per call). */
  readonly #labels: Readonly<Record<'input' | 'grad_output' | 'out' | 'saved', string>>;

  protected constructor(setup: NormSetup) {
    const { name, options } = setup;
    this.name = name;
    this.eps = options.eps;
    this.dtype = options.dtype;
    this.nonFinite = options.nonFinite;
    this.#backend = options.backend;
    this.momentum = setup.momentum;
    this.#countsBatches = setup.countsBatches;
    this.#labels = { input: `${name}: input`, grad_output: `${name}: grad_output`, out: `${name}: out`, saved: `${name}: the input saved by forward` };
    checkLayerBytes(name, layerArrays(setup), this.dtype);
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
    // a copy: the kept plan's view is the layer's own
    return { ...this.planOf(shape).view };
  }

  /** plan(shape), kept for the next call with an equal shape. */
  private planOf(shape: readonly number[]): Plan {
    const last = this.#planShape;
    if (last !== null && this.#plan !== null && sameShape(last, shape)) return this.#plan;
    const plan = this.plan(shape);
    this.#planShape = [...shape];
    this.#plan = plan;
    return plan;
  }

  /** The scratch arrays for `view`, made anew when its sizes change. */
  private scratchFor(view: NormView): Scratch {
    const count = statsCount(view);
    const k = affineSize(view);
    const kept = this.#scratch;
    if (kept !== null && kept.variance.length === count && kept.next.runningMean.length === view.groups && kept.dweight.length === k) return kept;
    const next = { runningMean: new Float64Array(view.groups), runningVar: new Float64Array(view.groups) };
    this.#scratch = { variance: new Float64Array(count), next, dweight: allocate(this.dtype, k), dbias: allocate(this.dtype, k) };
    return this.#scratch;
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
    // a JavaScript caller can pass anything, '__proto__' included
    const given: unknown = name;
    if (typeof given !== 'string' || !isBackendName(given) || !backendAvailable(given)) {
      throw new NormkitError('backend', `${this.name}: backend ${describeValue(given)} is unknown or not available here`);
    }
    checkBackendDtype(name, this.dtype, this.name);
    this.#backend = name;
  }

  train(mode = true): this {
    const given: unknown = mode;
    if (typeof given !== 'boolean') throw new NormkitError('option', `${this.name}: train(mode) takes true or false, got ${describeValue(given)}`);
    this.#training = given;
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

  /** A caller's tensor as the kernels may read it (see readTensor), in the layer's dtype. */
  private readInput(t: unknown, what: 'input' | 'grad_output' | 'out'): Tensor {
    const checked = readTensor(t, this.#labels[what]);
    const got = dtypeOf(checked.data);
    if (got !== this.dtype) {
      throw new NormkitError('dtype', `${this.name}: expected ${what} of dtype ${this.dtype}, got ${got}`);
    }
    return checked;
  }

  /** The layer's own arrays: no output may share memory with them. */
  private ownArrays(): FloatArray[] {
    const arrays = this.parameters().flatMap((p) => [p.data, p.grad]);
    if (this.#runningMean !== null && this.#runningVar !== null) arrays.push(this.#runningMean, this.#runningVar);
    return arrays;
  }

  /**
   * An output tensor given by the caller (wasmTensor avoids copies): the shape of `like`, the layer's
   * dtype, and no byte shared with the call's inputs (`inputs`, named) or the layer's own arrays.
   */
  private readOutput(out: unknown, like: Tensor, inputs: readonly [string, FloatArray][]): Tensor {
    const checked = this.readInput(out, 'out');
    if (checked.shape.length !== like.shape.length || checked.shape.some((d, i) => d !== like.shape[i])) {
      throw new NormkitError('shape', `${this.name}: expected out of shape ${formatShape(like.shape)}, got ${formatShape(checked.shape)}`);
    }
    for (const [what, data] of inputs) {
      if (overlaps(checked.data, data)) {
        throw new NormkitError('alias', `${this.name}: out must not share memory with ${what} (${data === checked.data ? 'the same array' : 'overlapping views of one buffer'})`);
      }
    }
    if (this.ownArrays().some((data) => overlaps(checked.data, data))) {
      throw new NormkitError('alias', `${this.name}: out must not share memory with the layer's parameters, gradients or running statistics`);
    }
    return checked;
  }

  /** A new output of `shape`: in wasm memory when this layer runs on wasm there (dispose() returns it; see tensor.ts). */
  private newOutput(shape: readonly number[]): OwnedTensor {
    return this.#backend === 'wasm' ? emptyTensor(this.dtype, shape) : ownedTensor(allocate(this.dtype, shape.reduce((p, d) => p * d, 1)), [...shape]);
  }

  /** y for x; `out` receives y instead of a new array (in place of allocation, e.g. a wasmTensor). */
  forward(x: Tensor): OwnedTensor;
  forward(x: Tensor, options: { out?: Tensor } | undefined): Tensor;
  forward(x: Tensor, options?: { out?: Tensor }): Tensor {
    const input = this.readInput(x, 'input');
    const { out } = readCallOptions(this.name, options, 'forward');
    const { view, singleValueMessage } = this.planOf(input.shape);
    if (input.shape.includes(0)) {
      throw new NormkitError('empty', `${this.name}: input has a zero-size dimension, got input size ${formatShape(input.shape)}`);
    }
    const runningMean = this.#runningMean;
    const runningVar = this.#runningVar;
    const batchStats = this.#training || runningMean === null || runningVar === null;
    if (batchStats && singleValueMessage !== null && reduceSize(view) <= 1) {
      throw new NormkitError('single-value', singleValueMessage);
    }
    const given = out === undefined ? null : this.readOutput(out, input, [['the input', input.data]]);
    const output = given === null ? this.newOutput(input.shape) : null;
    let y: FloatArray;
    try {
      y = this.forwardInto(input, view, batchStats, given, output);
    } catch (error) {
      output?.dispose();
      throw error;
    }
    return output ?? options?.out ?? { data: y, shape: [...input.shape] };
  }

  /** forward's work once its arguments are checked: y into `output` (ours) or the caller's `given`. */
  private forwardInto(input: Tensor, view: NormView, batchStats: boolean, given: Tensor | null, output: OwnedTensor | null): FloatArray {
    const runningMean = this.#runningMean;
    const runningVar = this.#runningVar;
    const count = statsCount(view);
    // under 'throw' y goes to a temporary array first: nothing the caller owns changes when the statistics fail
    const yToTemp = given === null || (batchStats && this.nonFinite === 'throw');
    const y = output?.data ?? (yToTemp ? allocate(this.dtype, input.data.length) : given.data);
    // the cache holds the last forward's statistics; these are the other pair
    if (this.#spareMean?.length !== count || this.#spareRstd?.length !== count) {
      this.#spareMean = new Float64Array(count);
      this.#spareRstd = new Float64Array(count);
    }
    const mean = this.#spareMean;
    const rstd = this.#spareRstd;
    const w = this.weight?.data ?? null;
    const b = this.bias?.data ?? null;
    let stepBackward: TrainingStepResult['backward'] | null = null;
    // the training batch's verdict: finite statistics, and the running statistics it would leave
    let batch: { readonly finite: boolean; readonly next: RunningAfter | null } | null = null;
    const step = this.#training ? this.trainingStep() : null;
    if (step !== null) {
      const running = runningMean === null || runningVar === null ? null : { mean: runningMean, var: runningVar, numBatchesTracked: this.#numBatchesTracked };
      const { kernels, dtype, eps, momentum, name } = this;
      const result = runTrainingStep({ name, kernels, dtype, eps, momentum, y, x: input.data, shape: input.shape, view, weight: w, bias: b, running }, step);
      stepBackward = result.backward;
      batch = result;
    } else if (batchStats) {
      const scratch = this.scratchFor(view);
      const variance = scratch.variance;
      this.kernels.forwardTrain(y, input.data, view, w, b, this.eps, mean, variance, rstd);
      const tracking = this.#training && runningMean !== null && runningVar !== null;
      const tracked = this.#numBatchesTracked + (this.#countsBatches ? 1 : 0);
      let next: RunningAfter | null = null;
      if (tracking) {
        const { runningMean: nextMean, runningVar: nextVar } = nextRunningStats(runningMean, runningVar, mean, variance, view, updateFactor(this.momentum, tracked), scratch.next);
        next = { runningMean: nextMean, runningVar: nextVar, numBatchesTracked: tracked };
      }
      batch = { finite: allFinite(mean) && allFinite(variance), next };
    } else if (runningMean !== null && runningVar !== null) {
      // eval with running statistics (batchStats is false only with them): rstd once per channel, copied to every block
      const groups = view.groups;
      for (let g = 0; g < groups; g++) {
        mean[g] = runningMean[g];
        rstd[g] = 1 / Math.sqrt(runningVar[g] + this.eps);
      }
      // blocks after the first (no integer division per value: a small call would spend more on it than on y)
      for (let q = groups; q < count; q += groups) {
        mean.copyWithin(q, 0, groups);
        rstd.copyWithin(q, 0, groups);
      }
      this.kernels.forwardWithStats(y, input.data, view, w, b, mean, rstd);
    }
    if (batch !== null) this.applyPolicy(batch, input);
    if (given !== null && y !== given.data) given.data.set(y);
    if (given !== null) noteWrite(given.data);
    this.commitCache(input, w, view, mean, rstd, batchStats, stepBackward);
    return y;
  }

  /**
   * The non-finite policy on a training batch: statistics count as non-finite where the batch's are, or
   * where the running ones would overflow the dtype; 'throw' refuses, the others commit or skip the update.
   */
  private applyPolicy(batch: { readonly finite: boolean; readonly next: RunningAfter | null }, input: Tensor): void {
    const { next } = batch;
    const finite = batch.finite && (next === null || this.fitsDtype(next.runningMean, next.runningVar));
    if (!finite && this.nonFinite === 'throw') {
      const why = allFinite(input.data) ? 'overflow (finite input too large for the statistics)' : 'are not finite (NaN or Inf in the input)';
      throw new NormkitError('non-finite', `${this.name}: batch statistics ${why} of size ${formatShape(input.shape)}`);
    }
    const runningMean = this.#runningMean;
    const runningVar = this.#runningVar;
    if (next === null || runningMean === null || runningVar === null || (!finite && this.nonFinite === 'skip-update')) return;
    // a loop: set() from a Float64Array into a Float32Array takes a slow converting path, costly for a small call
    for (let g = 0; g < runningMean.length; g++) {
      runningMean[g] = next.runningMean[g];
      runningVar[g] = next.runningVar[g];
    }
    this.#numBatchesTracked = next.numBatchesTracked;
  }

  /**
   * The forward just run becomes the cache: x and weight saved at version 0 (the last cache's Saved
   * objects reused in place of release and save: a layer's weight is there or not for good), and the last
   * cache's statistics become the spare pair.
   */
  private commitCache(x: Tensor, w: FloatArray | null, view: NormView, mean: Float64Array, rstd: Float64Array, batchStats: boolean, stepBackward: Cache['stepBackward']): void {
    const old = this.#cache;
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
    this.#cache = { x, saved, view, mean, rstd, batchStats, stepBackward };
  }

  /** Whether running statistics computed in float64 stay finite in the layer's dtype. */
  private fitsDtype(mean: Float64Array, variance: Float64Array): boolean {
    return this.dtype === 'float32' ? allFiniteF32(mean) && allFiniteF32(variance) : allFinite(mean) && allFinite(variance);
  }

  /**
   * dx for dy = dL/dy of the last forward; adds dL/dweight and dL/dbias into weight.grad and bias.grad.
   * `out` receives dx instead of a new array.
   */
  backward(dy: Tensor): OwnedTensor;
  backward(dy: Tensor, options: { out?: Tensor } | undefined): Tensor;
  backward(dy: Tensor, options?: { out?: Tensor }): Tensor {
    const cache = this.#cache;
    if (cache === null) throw new NormkitError('no-forward', `${this.name}: backward called before forward`);
    const grad = this.readInput(dy, 'grad_output');
    const { out } = readCallOptions(this.name, options, 'backward');
    const shape = cache.x.shape;
    if (grad.shape.length !== shape.length || grad.shape.some((d, i) => d !== shape[i])) {
      throw new NormkitError(
        'grad-shape',
        `${this.name}: expected grad_output of shape ${formatShape(shape)} (the last input's), got ${formatShape(grad.shape)}`,
      );
    }
    checkUsable(cache.x.data, this.#labels.saved);
    const changed = cache.saved.find((saved) => saved.version !== 0);
    if (changed !== undefined) {
      const what = changed.data === cache.x.data ? `the input of size ${formatShape(shape)}` : `weight of size [${changed.data.length}]`;
      throw new NormkitError(
        'modified',
        `${this.name}: one of the variables needed for gradient computation has been modified by an inplace operation: ${what} saved by forward is at version ${changed.version}; expected version 0 instead. Run forward again after changing it.`,
      );
    }
    const given = out === undefined ? null : this.readOutput(out, grad, [['grad_output', grad.data], ['the input saved by forward', cache.x.data]]);
    const output = given === null ? this.newOutput(shape) : null;
    const dx = output?.data ?? given?.data ?? allocate(this.dtype, 0);
    const scratch = this.scratchFor(cache.view);
    const dweight = this.weight === null ? null : scratch.dweight;
    const dbias = this.bias === null ? null : scratch.dbias;
    const w = this.weight?.data ?? null;
    try {
      if (cache.stepBackward !== null) cache.stepBackward(dx, dweight, dbias, grad.data);
      else this.kernels.backward(dx, dweight, dbias, grad.data, cache.x.data, cache.view, w, cache.mean, cache.rstd, cache.batchStats);
    } catch (error) {
      output?.dispose();
      throw error;
    }
    if (given !== null) noteWrite(given.data);
    if (dweight !== null) this.weight?.accumulate(dweight);
    if (dbias !== null) this.bias?.accumulate(dbias);
    return output ?? options?.out ?? { data: dx, shape: [...shape] };
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
  loadStateDict(state: StateDictInput, options?: { strict?: boolean }): void {
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
    loadState(this.name, { arrays, counters, finiteOnly }, state, readStrict(this.name, options));
  }
}
