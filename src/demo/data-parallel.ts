/**
 * The experiment's BatchNorm network trained data-parallel: every rank takes its slice of each global
 * batch (the same batches as the single-process run), its BatchNorm1d layers become SyncBatchNorm
 * (or stay local BatchNorm, to show the difference), and the gradients are averaged over the ranks
 * before each SGD step, as PyTorch's DDP does. Rank 0 evaluates at every checkpoint.
 */
import { NormkitError } from '../errors.js';
import { BatchNorm1d } from '../nn/batchnorm.js';
import { SoftmaxCrossEntropy } from '../nn/loss.js';
import type { Module } from '../nn/module.js';
import { SGD } from '../nn/sgd.js';
import type { Communicator } from '../nn/sync/communicator.js';
import { SyncBatchNorm } from '../nn/sync/sync-batchnorm.js';
import type { Tensor } from '../tensor.js';
import type { Digits } from './data.js';
import { PIXELS } from './data.js';
import type { Checkpoint, ExperimentOptions } from './experiment.js';
import { batchSampler, evaluate, network } from './experiment.js';

export interface DataParallelOptions extends Omit<ExperimentOptions, 'onStep'> {
  /** SyncBatchNorm (global batch statistics) or local BatchNorm1d per rank. */
  readonly syncBn: boolean;
  /** Samples of each global batch per rank, in rank order (default: batch / worldSize each). */
  readonly shards?: readonly number[] | undefined;
}

export interface DataParallelResult {
  readonly checkpoints: readonly Checkpoint[];
  readonly seconds: number;
}

type Stage = Module | SyncBatchNorm;

async function forward(stages: readonly Stage[], x: Tensor): Promise<Tensor> {
  let t = x;
  for (const m of stages) t = m instanceof SyncBatchNorm ? await m.forward(t) : m.forward(t);
  return t;
}

async function backward(stages: readonly Stage[], dy: Tensor): Promise<void> {
  let g = dy;
  for (const m of [...stages].reverse()) g = m instanceof SyncBatchNorm ? await m.backward(g) : m.backward(g);
}

/** Number of values one rank all-reduces per step: every gradient, and the loss. */
export function gradientCount(seed: number): number {
  return network(true, seed).model.parameters().reduce((n, p) => n + p.data.length, 0) + 1;
}

/** Trains this rank's part; rank 0 returns the checkpoints, the others null. */
export async function trainDataParallel(
  comm: Communicator,
  digits: Digits,
  options: DataParallelOptions,
  onStep?: (step: number, loss: number, accuracy: number) => void,
): Promise<DataParallelResult | null> {
  const started = performance.now();
  const { worldSize, rank } = comm;
  const shards = options.shards ?? Array.from({ length: worldSize }, () => options.batch / worldSize);
  if (shards.length !== worldSize || shards.some((n) => !Number.isInteger(n) || n < 1) || shards.reduce((a, n) => a + n, 0) !== options.batch) {
    throw new NormkitError('option', `the global batch ${options.batch} must split into ${worldSize} positive integer shards, got ${shards.join(', ')}`);
  }
  const local = shards[rank];
  const first = shards.slice(0, rank).reduce((a, n) => a + n, 0);
  // DDP's average of the ranks' mean-loss gradients is the full batch's when shards are equal; unequal ones weigh by size (n_r*W/N)
  const equal = shards.every((n) => n === local);
  const weight = equal ? 1 : (local * worldSize) / options.batch;
  const net = network(true, options.seed);
  // the Linear and Sigmoid modules are shared with `net`; SyncBatchNorm takes the place of each BatchNorm1d
  const stages: Stage[] = net.model.modules.map((m) => (options.syncBn && m instanceof BatchNorm1d ? new SyncBatchNorm(m.numFeatures, comm, { backend: m.backend }) : m));
  const params = stages.flatMap((m) => m.parameters());
  const sgd = new SGD(params, { lr: options.lr });
  const loss = new SoftmaxCrossEntropy();
  const nextBatch = batchSampler(digits, options.seed, options.batch);
  const batchX = new Float32Array(options.batch * PIXELS);
  const batchY = new Int32Array(options.batch);
  const sums = new Float64Array(params.reduce((n, p) => n + p.data.length, 0) + 1);
  const checkpoint = (step: number): Checkpoint => {
    // eval through the plain network: its BatchNorm1d layers take the SyncBatchNorm state (identical on every rank)
    stages.forEach((m, i) => {
      if (m instanceof SyncBatchNorm) net.model.modules[i].loadStateDict(m.stateDict());
    });
    return { ...evaluate(net, digits.test), step };
  };
  const checkpoints: Checkpoint[] = rank === 0 ? [checkpoint(0)] : [];
  for (let step = 1; step <= options.steps; step++) {
    nextBatch(batchX, batchY);
    sgd.zeroGrad();
    const x = { data: batchX.subarray(first * PIXELS, (first + local) * PIXELS), shape: [local, PIXELS] };
    const logits = await forward(stages, x);
    const value = loss.forward(logits, batchY.subarray(first, first + local));
    const dlogits = loss.backward();
    // unequal shards: dy of W times the global mean loss (rank r's samples weigh n_r/N), so SyncBatchNorm's sums meet at one scale
    if (!equal) for (let i = 0; i < dlogits.data.length; i++) dlogits.data[i] *= weight;
    await backward(stages, dlogits);
    // DDP: every gradient (of this rank's mean loss) averaged over the ranks, and the loss with them
    let at = 0;
    for (const p of params) {
      sums.set(p.grad, at);
      at += p.grad.length;
    }
    sums[at] = value * weight;
    await comm.allReduce(sums);
    at = 0;
    for (const p of params) {
      for (let i = 0; i < p.grad.length; i++) p.grad[i] = sums[at + i] / worldSize;
      at += p.grad.length;
    }
    sgd.step();
    if (rank === 0) {
      if (step % options.every === 0 || step === options.steps) checkpoints.push(checkpoint(step));
      onStep?.(step, sums[at] / worldSize, checkpoints[checkpoints.length - 1].accuracy);
    }
  }
  return rank === 0 ? { checkpoints, seconds: (performance.now() - started) / 1000 } : null;
}
