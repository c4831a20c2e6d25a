/**
 * Ioffe & Szegedy 2015, Fig. 1: a 784-100-100-100-10 sigmoid network trained with and without
 * BatchNorm1d before each hidden sigmoid, same initialization, data order and learning rate.
 */
import { BatchNorm1d } from '../nn/batchnorm.js';
import { Linear } from '../nn/linear.js';
import { SoftmaxCrossEntropy } from '../nn/loss.js';
import type { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { SGD } from '../nn/sgd.js';
import { Sigmoid } from '../nn/sigmoid.js';
import { Random } from '../random.js';
import type { Tensor } from '../tensor.js';
import type { Digits, Split } from './data.js';
import { PIXELS, shuffle } from './data.js';

export interface ExperimentOptions {
  readonly steps: number;
  readonly lr: number;
  readonly seed: number;
  readonly batch: number;
  /** Evaluate every this many steps (and at the end). */
  readonly every: number;
  /** Called after every step (for progress display), with the test accuracy of the latest checkpoint. */
  readonly onStep?: (network: string, step: number, loss: number, accuracy: number) => void;
}

export interface Checkpoint {
  readonly step: number;
  readonly accuracy: number;
  readonly loss: number;
  /** 15th, 50th and 85th percentiles of one sigmoid input of the last hidden layer over the test set */
  readonly percentiles: readonly [number, number, number];
}

export interface RunResult {
  readonly network: 'baseline' | 'batchnorm';
  readonly checkpoints: readonly Checkpoint[];
  readonly seconds: number;
}

const HIDDEN = 100;
/** The sigmoid input the percentiles follow: unit 0 of the last hidden layer. */
const WATCHED_UNIT = 0;

export interface Network {
  readonly model: Sequential;
  /** The module whose output feeds the last hidden sigmoid. */
  readonly lastPreActivation: Module;
}

/** The experiment's network; both networks share the initial weights of one seed. */
export function network(withBatchNorm: boolean, seed: number): Network {
  const layers: Module[] = [];
  let preActivation: Module | null = null;
  const sizes = [PIXELS, HIDDEN, HIDDEN, HIDDEN];
  for (let k = 0; k < 3; k++) {
    // same seeds for both networks: identical initial weights
    const linear = new Linear(sizes[k], sizes[k + 1], { seed: seed * 10 + k });
    layers.push(linear);
    preActivation = linear;
    if (withBatchNorm) {
      const bn = new BatchNorm1d(HIDDEN, { backend: 'js' });
      layers.push(bn);
      preActivation = bn;
    }
    layers.push(new Sigmoid());
  }
  layers.push(new Linear(HIDDEN, 10, { seed: seed * 10 + 3 }));
  return { model: new Sequential(...layers), lastPreActivation: preActivation ?? layers[0] };
}

function percentile(sorted: Float64Array, p: number): number {
  const at = (sorted.length - 1) * p;
  const lo = Math.floor(at);
  return sorted[lo] + (sorted[Math.min(lo + 1, sorted.length - 1)] - sorted[lo]) * (at - lo);
}

/** Test accuracy, loss and the watched sigmoid input's percentiles, in eval mode (running statistics). */
export function evaluate(net: Network, test: Split): Checkpoint & { step: 0 } {
  net.model.eval();
  const x: Tensor = { data: test.images, shape: [test.count, PIXELS] };
  // forward by hand to read the watched sigmoid input on the way
  let t = x;
  let watched: Tensor | null = null;
  for (const m of net.model.modules) {
    t = m.forward(t);
    if (m === net.lastPreActivation) watched = t;
  }
  const loss = new SoftmaxCrossEntropy().forward(t, test.labels);
  let correct = 0;
  for (let r = 0; r < test.count; r++) {
    let best = 0;
    for (let k = 1; k < 10; k++) if (t.data[r * 10 + k] > t.data[r * 10 + best]) best = k;
    if (best === test.labels[r]) correct++;
  }
  const inputs = new Float64Array(test.count);
  for (let r = 0; r < test.count; r++) inputs[r] = watched === null ? 0 : watched.data[r * HIDDEN + WATCHED_UNIT];
  inputs.sort();
  net.model.train();
  return { step: 0, accuracy: correct / test.count, loss, percentiles: [percentile(inputs, 0.15), percentile(inputs, 0.5), percentile(inputs, 0.85)] };
}

/** Fills the next batch: the same data order for every run of a seed, reshuffled each epoch. */
export function batchSampler(digits: Digits, seed: number, batch: number): (batchX: Float32Array, batchY: Int32Array) => void {
  const random = new Random(seed + 1);
  const order = Int32Array.from(digits.train.labels.keys());
  let cursor = order.length;
  return (batchX, batchY) => {
    for (let r = 0; r < batch; r++) {
      if (cursor === order.length) {
        shuffle(order, random);
        cursor = 0;
      }
      const i = order[cursor++];
      batchX.set(digits.train.images.subarray(i * PIXELS, (i + 1) * PIXELS), r * PIXELS);
      batchY[r] = digits.train.labels[i];
    }
  };
}

/** Trains one of the two networks ('baseline' or 'batchnorm') and evaluates it at every checkpoint. */
export function trainNetwork(name: RunResult['network'], digits: Digits, options: ExperimentOptions): RunResult {
  const started = performance.now();
  const net = network(name === 'batchnorm', options.seed);
  const sgd = new SGD(net.model.parameters(), { lr: options.lr });
  const loss = new SoftmaxCrossEntropy();
  const batchX = new Float32Array(options.batch * PIXELS);
  const batchY = new Int32Array(options.batch);
  const nextBatch = batchSampler(digits, options.seed, options.batch);
  const checkpoints: Checkpoint[] = [{ ...evaluate(net, digits.test), step: 0 }];
  for (let step = 1; step <= options.steps; step++) {
    nextBatch(batchX, batchY);
    sgd.zeroGrad();
    const logits = net.model.forward({ data: batchX, shape: [options.batch, PIXELS] });
    const value = loss.forward(logits, batchY);
    net.model.backward(loss.backward());
    sgd.step();
    if (step % options.every === 0 || step === options.steps) checkpoints.push({ ...evaluate(net, digits.test), step });
    options.onStep?.(name, step, value, checkpoints[checkpoints.length - 1].accuracy);
  }
  return { network: name, checkpoints, seconds: (performance.now() - started) / 1000 };
}

/** First checkpoint step at which a run reaches the accuracy, or null. */
export function stepsTo(run: RunResult, accuracy: number): number | null {
  return run.checkpoints.find((c) => c.accuracy >= accuracy)?.step ?? null;
}

/** How far the median of the watched sigmoid input moves over the run (max - min). */
export function medianDrift(run: RunResult): number {
  const medians = run.checkpoints.slice(1).map((c) => c.percentiles[1]);
  return Math.max(...medians) - Math.min(...medians);
}
