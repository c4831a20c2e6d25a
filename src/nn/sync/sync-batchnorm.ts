/**
 * SyncBatchNorm (PyTorch semantics): in training every rank normalizes with the statistics of the
 * whole global batch (uneven shards weighted by their counts), so each rank's output and dx are
 * BatchNorm's on the concatenated batch, sliced to its shard, and the running statistics (unbiased
 * with the global count) are the same on every rank. dweight and dbias are the rank's local sums,
 * which add up to the full batch's (data-parallel training averages them, as DDP does).
 *
 * Method: forward all-reduces every rank's (count, mean, M2) in its own slot (3*C*worldSize values,
 * PyTorch's all-gather of local statistics) and merges them in rank order by Chan's formula, without
 * cancellation; backward all-reduces sum(dy) and sum(dy*xhat) (2*C values) and completes
 * dx = weight*rstd*(dy - sum(dy)/M - xhat*sum(dy*xhat)/M) with the global sums.
 */
import type { Layout, NormView } from '../../core/layout.js';
import { reduceSize } from '../../core/layout.js';
import { nextRunningStats, updateFactor } from '../../core/stats.js';
import { NormkitError } from '../../errors.js';
import { backends } from '../../kernels/index.js';
import type { FloatArray, Tensor } from '../../tensor.js';
import { allocate, checkTensor, dtypeOf, formatShape } from '../../tensor.js';
import type { ModuleState, ModuleStateInput } from '../module.js';
import { BatchNormBase } from '../batchnorm.js';
import type { CommonOptions } from '../options.js';
import type { Parameter } from '../parameter.js';
import type { Communicator } from './communicator.js';
import { allFinite } from '../../core/float.js';

export interface SyncBatchNormOptions extends CommonOptions {
  /** Default 0.1; null for a cumulative average. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
  layout?: Layout;
}

/** The local layer: BatchNorm on inputs (N, C, ...) of rank 2 to 5; eval and state go through it. */
class LocalBatchNorm extends BatchNormBase {
  constructor(numFeatures: number, options: SyncBatchNormOptions | undefined) {
    super('SyncBatchNorm', [2, 3, 4, 5], numFeatures, options, false);
  }
}

interface Cache {
  readonly x: Tensor;
  readonly view: NormView;
  readonly mean: Float64Array;
  readonly rstd: Float64Array;
  /** values per channel over all ranks */
  readonly count: number;
}

export class SyncBatchNorm {
  readonly name = 'SyncBatchNorm';
  readonly communicator: Communicator;
  readonly #local: LocalBatchNorm;
  /** The last training forward; null after an eval forward (whose backward is local). */
  #cache: Cache | null = null;

  constructor(numFeatures: number, communicator: Communicator, options: SyncBatchNormOptions = {}) {
    this.#local = new LocalBatchNorm(numFeatures, options);
    this.communicator = communicator;
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

  /** y for this rank's shard; in training every rank must call it (one all-reduce). Eval is local, as in PyTorch. */
  async forward(x: Tensor): Promise<Tensor> {
    const local = this.#local;
    if (!local.training) {
      this.#cache = null;
      return local.forward(x);
    }
    checkTensor(x, `${this.name}: input`);
    if (dtypeOf(x.data) !== local.dtype) throw new NormkitError('dtype', `${this.name}: expected input of dtype ${local.dtype}, got ${dtypeOf(x.data)}`);
    const view = local.viewOf(x.shape);
    if (x.shape.includes(0)) throw new NormkitError('empty', `${this.name}: input has a zero-size dimension, got input size ${formatShape(x.shape)}`);
    const kernels = backends[local.backend];
    const C = view.groups;
    const n = reduceSize(view);
    const y = allocate(local.dtype, x.data.length);
    const localMean = new Float64Array(C);
    const localVar = new Float64Array(C);
    kernels.forwardTrain(y, x.data, view, null, null, local.eps, localMean, localVar, new Float64Array(C));
    // this rank's slot: count, mean[C], M2[C]; the others stay 0
    const { worldSize, rank } = this.communicator;
    const message = new Float64Array(worldSize * (1 + 2 * C));
    const slot = rank * (1 + 2 * C);
    message[slot] = n;
    for (let c = 0; c < C; c++) {
      message[slot + 1 + c] = localMean[c];
      message[slot + 1 + C + c] = localVar[c] * n;
    }
    await this.communicator.allReduce(message);
    // Chan et al.: merge (count, mean, M2) of the ranks in rank order
    const mean = new Float64Array(C);
    const m2 = new Float64Array(C);
    let count = 0;
    for (let r = 0; r < worldSize; r++) {
      const at = r * (1 + 2 * C);
      const nr = message[at];
      if (nr === 0) continue;
      const total = count + nr;
      for (let c = 0; c < C; c++) {
        const delta = message[at + 1 + c] - mean[c];
        mean[c] += (delta * nr) / total;
        m2[c] += message[at + 1 + C + c] + (delta * delta * count * nr) / total;
      }
      count = total;
    }
    if (count <= 1) throw new NormkitError('single-value', `Expected more than 1 value per channel when training, got ${count} over ${worldSize} ranks (local input size ${formatShape(x.shape)})`);
    const variance = m2.map((v) => v / count);
    const rstd = variance.map((v) => 1 / Math.sqrt(v + local.eps));
    kernels.forwardWithStats(y, x.data, view, local.weight?.data ?? null, local.bias?.data ?? null, mean, rstd);
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
    this.#cache = { x, view, mean, rstd, count };
    return { data: y, shape: [...x.shape] };
  }

  /** dx for dy of the last forward (training: one all-reduce); adds this rank's dweight and dbias into the gradients. */
  async backward(dy: Tensor): Promise<Tensor> {
    const cache = this.#cache;
    const local = this.#local;
    if (cache === null) return local.backward(dy);
    checkTensor(dy, `${this.name}: grad_output`);
    const shape = cache.x.shape;
    if (dtypeOf(dy.data) !== local.dtype || dy.shape.length !== shape.length || dy.shape.some((d, i) => d !== shape[i])) {
      throw new NormkitError('grad-shape', `${this.name}: expected grad_output of shape ${formatShape(shape)} and dtype ${local.dtype}, got ${formatShape(dy.shape)} ${dtypeOf(dy.data)}`);
    }
    const { view, mean, rstd, count } = cache;
    const C = view.groups;
    const w = local.weight?.data ?? null;
    const dx = allocate(local.dtype, dy.data.length);
    const dweight = allocate(local.dtype, C);
    const dbias = allocate(local.dtype, C);
    // constant statistics: dx = term 1 = dy*weight*rstd, and the local sums dweight = sum(dy*xhat), dbias = sum(dy)
    backends[local.backend].backward(dx, dweight, dbias, dy.data, cache.x.data, view, w, mean, rstd, false);
    const sums = new Float64Array(2 * C);
    sums.set(dbias);
    sums.set(dweight, C);
    await this.communicator.allReduce(sums);
    // terms 2 and 3 with the global sums: dx -= weight*rstd*(sum(dy)/M + xhat*sum(dy*xhat)/M)
    const { span: S, inner: B } = view;
    let i = 0;
    for (let s = 0; s < S; s++) {
      for (let c = 0; c < C; c++) {
        const k = (w === null ? 1 : w[c]) * rstd[c];
        const term3 = (k * sums[c]) / count;
        const term2 = (k * sums[C + c]) / count;
        for (let b = 0; b < B; b++, i++) dx[i] -= term3 + (cache.x.data[i] - mean[c]) * rstd[c] * term2;
      }
    }
    local.weight?.accumulate(dweight);
    local.bias?.accumulate(dbias);
    return { data: dx, shape: [...shape] };
  }
}
