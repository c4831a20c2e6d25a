/**
 * The one normalization layer: BatchNorm, InstanceNorm, GroupNorm and LayerNorm differ only in
 * the view they take of an input (core/layout.ts) and in whether they keep running statistics.
 * Every call validates all of its input before it changes any state.
 */
import type { Layout, NormView } from '../core/layout.js';
import { affineSize, reduceSize, statsCount } from '../core/layout.js';
import { nextRunningStats, statsFromRunning, updateFactor } from '../core/stats.js';
import { NormkitError } from '../errors.js';
import { backends, checkBackendDtype, resolveBackend } from '../kernels/index.js';
import type { BackendName, NormKernels } from '../kernels/contract.js';
import type { DType, FloatArray, OwnedTensor, Tensor } from '../tensor.js';
import { allocate, describeValue, dtypeOf, emptyTensor, formatShape, ownedTensor, readTensor } from '../tensor.js';
import { checkOutput, readCallOptions, sameShape } from './call-checks.js';
import { checkUnmodified, ForwardCache } from './forward-cache.js';
import type { BatchVerdict } from './non-finite.js';
import { commitsBatch } from './non-finite.js';
import { noteWrite } from './saved.js';
import { checkUsable } from '../core/memory.js';
import { checkLayerBytes, layerArrays } from './limits.js';
import type { NonFinitePolicy, ResolvedOptions } from './options.js';
import type { Module, ModuleState, ModuleStateInput } from './module.js';
import { Parameter } from './parameter.js';
import { loadState, readStrict } from './state.js';
import type { Mask, ValidPositions } from './masked.js';
import { readMask, runMaskedStep } from './masked.js';
import type { TrainingStepOptions, TrainingStepResult } from './training-step.js';
import { runTrainingStep } from './training-step.js';
import { allFinite, numel } from '../core/float.js';

/** PyTorch state-dict keys mapped to copies of the layer's arrays (num_batches_tracked as a number). */
export type StateDict = ModuleState;
/** What loadStateDict accepts: arrays of numbers or typed arrays, and a number for num_batches_tracked. */
export type StateDictInput = ModuleStateInput;

/** How a layer sees one input: its view, and the error text when a statistic would cover one value. */
export interface InputView {
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

/** Per-call arrays a layer keeps for the next call of the same view (a small call would spend more allocating them than computing). */
interface Scratch {
  readonly variance: Float64Array;
  /** the running statistics a training batch would leave (G values each) */
  readonly next: { readonly runningMean: Float64Array; readonly runningVar: Float64Array };
  readonly dweight: FloatArray;
  readonly dbias: FloatArray;
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
  readonly #cache = new ForwardCache();
  /** The view of the last input shape (inputView() depends on the shape only), so a loop over one shape checks it once. */
  #viewShape: readonly number[] | null = null;
  #inputView: InputView | null = null;
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
  protected abstract inputView(shape: readonly number[]): InputView;

  /** The layout a forward `mask` is read in (BatchNorm: masked statistics, masked.ts); null: the layer takes no mask. */
  protected maskLayout(): Layout | null {
    return null;
  }

  /** Ghost batches or renorm for training steps (BatchNorm); null: the plain step. */
  protected trainingStep(): TrainingStepOptions | null {
    return null;
  }

  /** The view the kernels use for an input of this shape: which elements share statistics and affine entries. */
  viewOf(shape: readonly number[]): NormView {
    // a copy: the kept view is the layer's own
    return { ...this.inputViewOf(shape).view };
  }

  /** inputView(shape), kept for the next call with an equal shape. */
  private inputViewOf(shape: readonly number[]): InputView {
    const last = this.#viewShape;
    if (last !== null && this.#inputView !== null && sameShape(last, shape)) return this.#inputView;
    const inputView = this.inputView(shape);
    this.#viewShape = [...shape];
    this.#inputView = inputView;
    return inputView;
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
    const backend = resolveBackend(name, this.name);
    checkBackendDtype(backend, this.dtype, this.name);
    this.#backend = backend;
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
    checkOutput(this.name, checked, like, inputs, this.ownArrays());
    return checked;
  }

  /** A new output of `shape`: in wasm memory when this layer runs on wasm there (dispose() returns it; see tensor.ts). */
  private newOutput(shape: readonly number[]): OwnedTensor {
    return this.#backend === 'wasm' ? emptyTensor(this.dtype, shape) : ownedTensor(allocate(this.dtype, numel(shape)), [...shape]);
  }

  /** y for x; `out` receives y instead of a new array (in place of allocation, e.g. a wasmTensor). */
  forward(x: Tensor): OwnedTensor;
  forward(x: Tensor, options: { out?: Tensor; mask?: Mask } | undefined): Tensor;
  forward(x: Tensor, options?: { out?: Tensor; mask?: Mask }): Tensor {
    const input = this.readInput(x, 'input');
    const maskLayout = this.maskLayout();
    const { out, mask: givenMask } = readCallOptions(this.name, options, 'forward', maskLayout === null ? ['out'] : ['out', 'mask']);
    const { view, singleValueMessage } = this.inputViewOf(input.shape);
    if (input.shape.includes(0)) {
      throw new NormkitError('empty', `${this.name}: input has a zero-size dimension, got input size ${formatShape(input.shape)}`);
    }
    const mask = givenMask === undefined || maskLayout === null ? null : readMask(this.name, givenMask, input.shape, maskLayout);
    if (mask !== null && this.#training && this.trainingStep() !== null) {
      throw new NormkitError('option', `${this.name}: a mask does not combine with virtualBatchSize or renorm in training`);
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
      y = this.forwardInto(input, view, batchStats, given, output, mask);
    } catch (error) {
      output?.dispose();
      throw error;
    }
    return output ?? options?.out ?? { data: y, shape: [...input.shape] };
  }

  /** forward's work once its arguments are checked: y into `output` (ours) or the caller's `given`. */
  private forwardInto(input: Tensor, view: NormView, batchStats: boolean, given: Tensor | null, output: OwnedTensor | null, mask: ValidPositions | null): FloatArray {
    const runningMean = this.#runningMean;
    const runningVar = this.#runningVar;
    const count = statsCount(view);
    // under 'throw' y goes to a temporary array first: nothing the caller owns changes when the statistics fail
    const yToTemp = given === null || (batchStats && this.nonFinite === 'throw');
    const y = output?.data ?? (yToTemp ? allocate(this.dtype, input.data.length) : given.data);
    // the cache holds the last forward's statistics; these are the other pair
    const { mean, rstd } = this.#cache.spares(count);
    const w = this.weight?.data ?? null;
    const b = this.bias?.data ?? null;
    let stepBackward: TrainingStepResult['backward'] | null = null;
    // the training batch's verdict: finite statistics, and the running statistics it would leave
    let batch: BatchVerdict | null = null;
    const step = this.#training ? this.trainingStep() : null;
    if (mask !== null) {
      const running = runningMean === null || runningVar === null ? null : { mean: runningMean, var: runningVar, numBatchesTracked: this.#numBatchesTracked };
      const { dtype, eps, momentum, name } = this;
      const update = this.#training && running !== null;
      const result = runMaskedStep({ name, dtype, eps, momentum, shape: input.shape, y, x: input.data, view, weight: w, bias: b, batchStats, update, running, mean, rstd }, mask);
      stepBackward = result.backward;
      batch = result.batch;
    } else if (step !== null) {
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
      let next: BatchVerdict['next'] = null;
      if (tracking) {
        const { runningMean: nextMean, runningVar: nextVar } = nextRunningStats(runningMean, runningVar, mean, variance, view, updateFactor(this.momentum, tracked), scratch.next);
        next = { runningMean: nextMean, runningVar: nextVar, numBatchesTracked: tracked };
      }
      batch = { finite: allFinite(mean) && allFinite(variance), next };
    } else if (runningMean !== null && runningVar !== null) {
      // eval with running statistics (batchStats is false only with them)
      statsFromRunning(mean, rstd, runningMean, runningVar, this.eps, view.groups);
      this.kernels.forwardWithStats(y, input.data, view, w, b, mean, rstd);
    }
    if (batch !== null) this.applyPolicy(batch, input);
    if (given !== null && y !== given.data) given.data.set(y);
    if (given !== null) noteWrite(given.data);
    this.#cache.commit(input, w, view, mean, rstd, batchStats, stepBackward);
    return y;
  }

  /** Commits the running statistics a training batch leaves, as the non-finite policy says (non-finite.ts). */
  private applyPolicy(batch: BatchVerdict, input: Tensor): void {
    const { next } = batch;
    const runningMean = this.#runningMean;
    const runningVar = this.#runningVar;
    if (!commitsBatch(this.name, this.nonFinite, this.dtype, batch, input) || next === null || runningMean === null || runningVar === null) return;
    // a loop: set() from a Float64Array into a Float32Array takes a slow converting path, costly for a small call
    for (let g = 0; g < runningMean.length; g++) {
      runningMean[g] = next.runningMean[g];
      runningVar[g] = next.runningVar[g];
    }
    next.commitExtra?.();
    this.#numBatchesTracked = next.numBatchesTracked;
  }

  /**
   * dx for dy = dL/dy of the last forward; adds dL/dweight and dL/dbias into weight.grad and bias.grad.
   * `out` receives dx instead of a new array.
   */
  backward(dy: Tensor): OwnedTensor;
  backward(dy: Tensor, options: { out?: Tensor } | undefined): Tensor;
  backward(dy: Tensor, options?: { out?: Tensor }): Tensor {
    const cache = this.#cache.last;
    if (cache === null) throw new NormkitError('no-forward', `${this.name}: backward called before forward`);
    const grad = this.readInput(dy, 'grad_output');
    const { out } = readCallOptions(this.name, options, 'backward');
    const shape = cache.x.shape;
    if (!sameShape(grad.shape, shape)) {
      throw new NormkitError(
        'grad-shape',
        `${this.name}: expected grad_output of shape ${formatShape(shape)} (the last input's), got ${formatShape(grad.shape)}`,
      );
    }
    checkUsable(cache.x.data, this.#labels.saved);
    checkUnmodified(this.name, cache);
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
