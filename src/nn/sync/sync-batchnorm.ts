/**
 * SyncBatchNorm (PyTorch semantics): in training every rank normalizes with the statistics of the
 * whole global batch (uneven shards weighted by their counts), so each rank's output and dx are
 * BatchNorm's on the concatenated batch, sliced to its shard, and the running statistics (unbiased
 * with the global count) are the same on every rank. dweight and dbias are the rank's local sums,
 * which add up to the full batch's (data-parallel training averages them, as DDP does).
 *
 * Method: forward gathers every rank's (count, mean, M2) (PyTorch's all-gather of local statistics;
 * an all-reduce of rank slots where the group has no all-gather) and merges them in rank order by
 * Chan's formula, without cancellation; backward all-reduces sum(dy) and sum(dy*xhat) (2*C values,
 * float64) and completes dx = weight*rstd*(dy - sum(dy)/M - xhat*sum(dy*xhat)/M) with the global
 * sums, rounded once. The local statistics and sums come from the layer's backend kernels. A rank with
 * 0 samples takes part with zero statistics (as PyTorch does); one rank is BatchNorm (PyTorch skips
 * the exchange too). A rank that fails before its exchange aborts the group, so the others get an
 * error naming it instead of a wait for the timeout.
 *
 * References: Ioffe & Szegedy 2015 (BatchNorm); Chan, Golub & LeVeque 1979 (pairwise variance).
 */
import type { Layout, NormView } from '../../core/layout.js';
import { reduceSize } from '../../core/layout.js';
import { nextRunningStats, updateFactor } from '../../core/stats.js';
import { NormkitError } from '../../errors.js';
import { backends } from '../../kernels/index.js';
import type { FloatArray, Tensor } from '../../tensor.js';
import { allocate, dtypeOf, formatShape, readTensor } from '../../tensor.js';
import type { ModuleState, ModuleStateInput } from '../module.js';
import { BatchNormBase } from '../batchnorm.js';
import type { CommonOptions } from '../options.js';
import type { Parameter } from '../parameter.js';
import type { Saved } from '../saved.js';
import { noteWrite, save } from '../saved.js';
import type { Communicator } from './communicator.js';
import { readCommunicator } from './communicator.js';
import { allFinite } from '../../core/float.js';

export interface SyncBatchNormOptions extends CommonOptions {
  /** Default 0.1; null for a cumulative average. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
  layout?: Layout;
}

/** The local layer: BatchNorm on inputs (N, C, ...) of rank 2 to 5; eval, one rank and state go through it. */
class LocalBatchNorm extends BatchNormBase {
  constructor(numFeatures: number, options: SyncBatchNormOptions | undefined) {
    super('SyncBatchNorm', [2, 3, 4, 5], numFeatures, options, false);
  }
}

interface Cache {
  readonly x: Tensor;
  /** x as forward saw it: backward refuses once normkit wrote it */
  readonly saved: Saved;
  readonly view: NormView;
  readonly mean: Float64Array;
  readonly rstd: Float64Array;
  /** values per channel over all ranks */
  readonly count: number;
  /** set by the backward that used it: a second backward is refused (PyTorch frees the graph) */
  used: boolean;
}

/** Layer ids per communicator: layers made in the same order on every rank get the same id. */
const layerCounts = new WeakMap<Communicator, number>();

export class SyncBatchNorm {
  readonly name = 'SyncBatchNorm';
  readonly communicator: Communicator;
  /** This layer's id within its communicator (frames and errors name it). */
  readonly layerId: number;
  readonly #worldSize: number;
  readonly #rank: number;
  readonly #local: LocalBatchNorm;
  /** The last multi-rank training forward; null after an eval or one-rank forward (whose backward is the local layer's). */
  #cache: Cache | null = null;
  /** The shape of the last forward when it was an empty shard in eval (no local layer call to go back through). */
  #emptyShape: readonly number[] | null = null;

  constructor(numFeatures: number, communicator: Communicator, options: SyncBatchNormOptions = {}) {
    const read = readCommunicator(communicator, 'SyncBatchNorm');
    this.#local = new LocalBatchNorm(numFeatures, options);
    this.communicator = read.communicator;
    this.#worldSize = read.worldSize;
    this.#rank = read.rank;
    this.layerId = layerCounts.get(read.communicator) ?? 0;
    layerCounts.set(read.communicator, this.layerId + 1);
  }

  get numFeatures(): number {
    return this.#local.numFeatures;
  }

  get weight(): Parameter | null {
    return this.#local.weight;
  }

  get bias(): Parameter | null {
    return this.#local.bias;
  }

  get runningMean(): FloatArray | null {
    return this.#local.runningMean;
  }

  get runningVar(): FloatArray | null {
    return this.#local.runningVar;
  }

  get numBatchesTracked(): number {
    return this.#local.numBatchesTracked;
  }

  get training(): boolean {
    return this.#local.training;
  }

  train(mode = true): this {
    this.#local.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  parameters(): Parameter[] {
    return this.#local.parameters();
  }

  zeroGrad(): void {
    this.#local.zeroGrad();
  }

  stateDict(): ModuleState {
    return this.#local.stateDict();
  }

  loadStateDict(state: ModuleStateInput, options: { strict?: boolean } = {}): void {
    this.#local.loadStateDict(state, options);
  }

  /** Runs `check`; if it throws, tells the group this rank failed (the others stop waiting) and rethrows. */
  #orAbort<T>(check: () => T): T {
    try {
      return check();
    } catch (error) {
      this.communicator.abort?.(`${this.name} (layer ${this.layerId}): ${error instanceof Error ? error.message : String(error)}`);
      throw error;
    }
  }

  /** y for this rank's shard; in training every rank must call it (one exchange). Eval is local, as in PyTorch. */
  async forward(x: Tensor): Promise<Tensor> {
    const local = this.#local;
    this.#cache = null;
    this.#emptyShape = null;
    if (!local.training || this.#worldSize === 1) {
      const input = readTensor(x, `${this.name}: input`);
      // an empty shard in eval (others of its group have samples): an empty y, as PyTorch's eval gives
      if (this.#worldSize > 1 && input.shape.length > 1 && input.shape[0] === 0 && !input.shape.slice(1).includes(0)) {
        local.viewOf(input.shape);
        this.#emptyShape = input.shape;
        return { data: allocate(local.dtype, 0), shape: [...input.shape] };
      }
      return local.forward(input);
    }
    const { input, view } = this.#orAbort(() => {
      const input = readTensor(x, `${this.name}: input`);
      if (dtypeOf(input.data) !== local.dtype) throw new NormkitError('dtype', `${this.name}: expected input of dtype ${local.dtype}, got ${dtypeOf(input.data)}`);
      if (input.shape.length > 1 && input.shape.slice(1).includes(0)) {
        throw new NormkitError('empty', `${this.name}: input has a zero-size dimension other than the batch, got input size ${formatShape(input.shape)}`);
      }
      return { input, view: local.viewOf(input.shape) };
    });
    const kernels = backends[local.backend];
    const C = view.groups;
    const n = reduceSize(view);
    const y = allocate(local.dtype, input.data.length);
    const localMean = new Float64Array(C);
    const localVar = new Float64Array(C);
    // this rank's statistics (none for an empty shard): y here is scratch, written again below
    if (n > 0) kernels.forwardTrain(y, input.data, view, null, null, local.eps, localMean, localVar, new Float64Array(C));
    const mine = new Float64Array(1 + 2 * C);
    mine[0] = n;
    for (let c = 0; c < C; c++) {
      mine[1 + c] = localMean[c];
      mine[1 + C + c] = localVar[c] * n;
    }
    const parts = await this.#gather(mine);
    // Chan et al.: merge (count, mean, M2) of the ranks in rank order
    const mean = new Float64Array(C);
    const m2 = new Float64Array(C);
    let count = 0;
    for (const part of parts) {
      const nr = part[0];
      if (nr === 0) continue;
      const total = count + nr;
      for (let c = 0; c < C; c++) {
        const delta = part[1 + c] - mean[c];
        mean[c] += (delta * nr) / total;
        m2[c] += part[1 + C + c] + (delta * delta * count * nr) / total;
      }
      count = total;
    }
    if (count <= 1) throw new NormkitError('single-value', `Expected more than 1 value per channel when training, got ${count} over ${this.#worldSize} ranks (local input size ${formatShape(input.shape)})`);
    const variance = m2.map((v) => v / count);
    const rstd = variance.map((v) => 1 / Math.sqrt(v + local.eps));
    if (n > 0) kernels.forwardWithStats(y, input.data, view, local.weight?.data ?? null, local.bias?.data ?? null, mean, rstd);
    const finite = allFinite(mean) && allFinite(variance);
    if (!finite && local.nonFinite === 'throw') throw new NormkitError('non-finite', `${this.name}: global batch statistics are not finite`);
    const { runningMean, runningVar } = local;
    if (runningMean !== null && runningVar !== null && (finite || local.nonFinite === 'propagate')) {
      // the update of BatchNorm over the global batch: unbiased with the global count
      const tracked = local.numBatchesTracked + 1;
      const global = { outer: 1, span: count, groups: C, inner: 1, affinePerGroup: 1 };
      const next = nextRunningStats(runningMean, runningVar, mean, variance, global, updateFactor(local.momentum, tracked));
      local.loadStateDict({ running_mean: next.runningMean, running_var: next.runningVar, num_batches_tracked: tracked }, { strict: false });
    }
    this.#cache = { x: input, saved: save(input.data), view, mean, rstd, count, used: false };
    return { data: y, shape: [...input.shape] };
  }

  /** Every rank's part, in rank order: the group's all-gather, or an all-reduce where each rank fills its own slot. */
  async #gather(mine: Float64Array): Promise<Float64Array[]> {
    const tag = { layer: this.layerId, what: 'forward statistics' };
    const { communicator } = this;
    if (communicator.allGather !== undefined) {
      const parts = await communicator.allGather(mine, tag);
      const wrong = parts.findIndex((p) => p.length !== mine.length);
      if (parts.length !== this.#worldSize || wrong !== -1) {
        throw new NormkitError('backend', `${this.name} (layer ${this.layerId}): the all-gather returned ${parts.length} parts${wrong === -1 ? '' : `, rank ${wrong}'s of ${parts[wrong].length} values`}; expected ${this.#worldSize} of ${mine.length}`);
      }
      return parts;
    }
    const slots = new Float64Array(this.#worldSize * mine.length);
    slots.set(mine, this.#rank * mine.length);
    await communicator.allReduce(slots, tag);
    return Array.from({ length: this.#worldSize }, (_, r) => slots.subarray(r * mine.length, (r + 1) * mine.length));
  }

  /** dx for dy of the last forward (training: one all-reduce); adds this rank's dweight and dbias into the gradients. */
  async backward(dy: Tensor): Promise<Tensor> {
    const cache = this.#cache;
    const local = this.#local;
    const emptyShape = this.#emptyShape;
    if (emptyShape !== null) {
      const grad = readTensor(dy, `${this.name}: grad_output`);
      if (grad.shape.length !== emptyShape.length || grad.shape.some((d, i) => d !== emptyShape[i])) {
        throw new NormkitError('grad-shape', `${this.name}: expected grad_output of shape ${formatShape(emptyShape)}, got ${formatShape(grad.shape)}`);
      }
      return { data: allocate(local.dtype, 0), shape: [...emptyShape] };
    }
    if (cache === null) return local.backward(dy);
    const grad = this.#orAbort(() => {
      if (cache.used) {
        throw new NormkitError('no-forward', `${this.name}: Trying to backward through the graph a second time: the last forward's backward already ran. Run forward again.`);
      }
      const grad = readTensor(dy, `${this.name}: grad_output`);
      const shape = cache.x.shape;
      if (dtypeOf(grad.data) !== local.dtype || grad.shape.length !== shape.length || grad.shape.some((d, i) => d !== shape[i])) {
        throw new NormkitError('grad-shape', `${this.name}: expected grad_output of shape ${formatShape(shape)} and dtype ${local.dtype}, got ${formatShape(grad.shape)} ${dtypeOf(grad.data)}`);
      }
      if (cache.saved.version !== 0) {
        throw new NormkitError(
          'modified',
          `${this.name}: one of the variables needed for gradient computation has been modified by an inplace operation: the input of size ${formatShape(shape)} saved by forward is at version ${cache.saved.version}; expected version 0 instead. Run forward again after changing it.`,
        );
      }
      return grad;
    });
    const { view, mean, rstd, count, x } = cache;
    const C = view.groups;
    const w = local.weight?.data ?? null;
    const dx = allocate(local.dtype, grad.data.length);
    // the local sums sum(dy*xhat), sum(dy) kept in float64 (dx cancels them on tiny groups): the layer's
    // kernels in float64; in float32 the js kernels, which write dweight and dbias from float64 sums into any array
    const sumDyXhat = new Float64Array(C);
    const sumDy = new Float64Array(C);
    const kernels = local.dtype === 'float64' ? backends[local.backend] : backends.js;
    if (dx.length > 0) kernels.backward(dx, sumDyXhat, sumDy, grad.data, x.data, view, w, mean, rstd, false);
    const sums = new Float64Array(2 * C);
    sums.set(sumDy);
    sums.set(sumDyXhat, C);
    await this.communicator.allReduce(sums, { layer: this.layerId, what: 'backward sums' });
    cache.used = true;
    // dx = weight*rstd*(dy - sum(dy)/M - xhat*sum(dy*xhat)/M) from dy, in float64, rounded once: term 1, term 3, term 2
    const { span: S, groups: G, inner: B } = view;
    const dyData = grad.data;
    const xData = x.data;
    let i = 0;
    for (let s = 0; s < S; s++) {
      for (let c = 0; c < G; c++) {
        const r = rstd[c];
        const k = (w === null ? 1 : w[c]) * r;
        const meanDy = sums[c] / count;
        const meanDyXhat = sums[C + c] / count;
        const mu = mean[c];
        for (let b = 0; b < B; b++, i++) dx[i] = k * (dyData[i] - meanDy - (xData[i] - mu) * r * meanDyXhat);
      }
    }
    noteWrite(dx);
    // rounded to the dtype first, as BatchNorm's dweight and dbias are
    const inDtype = (sum: Float64Array): FloatArray => {
      const out = allocate(local.dtype, C);
      out.set(sum);
      return out;
    };
    local.weight?.accumulate(inDtype(sumDyXhat));
    local.bias?.accumulate(inDtype(sumDy));
    return { data: dx, shape: [...cache.x.shape] };
  }
}
