// Browser side of test/tfjs-gpu.test.ts: tfjs on its webgpu (or webgl) backend with normkit/tfjs, each case
// run with normkit and on stock tfjs (restore()), returning plain numbers for Node to check.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { useNormkit } from '../src/tfjs/index.ts';
import type { NormkitTfjs } from '../src/tfjs/index.ts';
import type { ConvNetOptions } from '../src/demo/tfjs-convnet.ts';
import { convNet, smallConvNet, syntheticDigits } from '../src/demo/tfjs-convnet.ts';

type Tensor = tf.Tensor;

export interface BatchNormCase {
  readonly shape: number[];
  readonly paramShape: number[];
  readonly x: number[];
  readonly mean: number[];
  readonly variance: number[];
  readonly gamma: number[];
  readonly beta: number[];
  readonly dy: number[];
  readonly eps: number;
}

export interface LayerCase extends BatchNormCase {
  readonly axis: number;
  readonly momentum: number;
  readonly lr: number;
  readonly scale: boolean;
  readonly center: boolean;
}

/** tfjs's getKernel returns undefined where nothing is registered (its type says otherwise). */
const registered = (name: string, backend: string): tf.KernelConfig | undefined => tf.getKernel(name, backend);

const notices: string[] = [];
let handle: NormkitTfjs | null = null;

async function install(): Promise<void> {
  handle = await useNormkit(tf, { onFallback: (m) => notices.push(m) });
}

/** Runs `fn` with normkit, then on stock tfjs (normkit restored and installed again). */
async function both<T>(fn: () => Promise<T> | T): Promise<{ normkit: T; stock: T }> {
  const normkit = await fn();
  handle?.restore();
  try {
    return { normkit, stock: await fn() };
  } finally {
    await install();
  }
}

/** The kernels `fn` runs (tfjs's kernel registry wrapped for the call; tf.profile reads every output back and stalls webgpu). */
async function kernelsRunBy(fn: () => void): Promise<string[]> {
  const names = new Set<string>();
  const engine = tf.engine();
  const runKernel = engine.runKernel.bind(engine);
  engine.runKernel = (name, inputs, attrs) => {
    names.add(name);
    return runKernel(name, inputs, attrs);
  };
  try {
    fn();
  } finally {
    engine.runKernel = runKernel;
  }
  await Promise.resolve();
  return [...names];
}

const data = async (t: Tensor): Promise<number[]> => Array.from(await t.data());

function batchNorm(k: BatchNormCase): Promise<number[]> {
  const y = tf.tidy(() => tf.batchNorm(tf.tensor(k.x, k.shape), tf.tensor(k.mean, k.paramShape), tf.tensor(k.variance, k.paramShape), tf.tensor(k.beta, k.paramShape), tf.tensor(k.gamma, k.paramShape), k.eps));
  return data(y).finally(() => {
    y.dispose();
  });
}

async function training(k: BatchNormCase & { readonly axis: number }): Promise<Record<'y' | 'mean' | 'variance' | 'dx' | 'dscale' | 'doffset', number[]>> {
  const h = handle!;
  const [x, dy, scale, offset] = [tf.tensor(k.x, k.shape), tf.tensor(k.dy, k.shape), tf.tensor1d(k.gamma), tf.tensor1d(k.beta)];
  const { y, mean, variance } = h.batchNormTraining(x, { axis: k.axis, scale, offset, epsilon: k.eps });
  const loss = (xx: Tensor, s: Tensor, o: Tensor) => tf.sum(tf.mul(h.batchNormTraining(xx, { axis: k.axis, scale: s, offset: o, epsilon: k.eps }).y, dy));
  const [dx, dscale, doffset] = tf.grads(loss)([x, scale, offset]);
  const out = { y: await data(y), mean: await data(mean), variance: await data(variance), dx: await data(dx), dscale: await data(dscale), doffset: await data(doffset) };
  tf.dispose([x, dy, scale, offset, y, mean, variance, dx, dscale, doffset]);
  return out;
}

/** dx of L = sum(mean*a) + sum(variance*b): the statistics outputs carry gradient. */
async function statisticsGradient(k: { shape: number[]; x: number[]; a: number[]; b: number[] }): Promise<number[]> {
  const x = tf.tensor(k.x, k.shape);
  const dx = tf.grad((xx: Tensor) => {
    const { mean, variance } = handle!.batchNormTraining(xx);
    return tf.add(tf.sum(tf.mul(mean, k.a)), tf.sum(tf.mul(variance, k.b)));
  })(x);
  const out = await data(dx);
  tf.dispose([x, dx]);
  return out;
}

/** Three SGD steps of L = sum(y*dy) through tf.layers.batchNormalization, then an inference call. */
async function layer(k: LayerCase): Promise<{ outputs: number[][]; inference: number[]; weights: number[][]; kernels: string[] }> {
  const bn = tf.layers.batchNormalization({ axis: k.axis, momentum: k.momentum, epsilon: k.eps, scale: k.scale, center: k.center });
  bn.build(k.shape);
  bn.setWeights([...(k.scale ? [tf.tensor1d(k.gamma)] : []), ...(k.center ? [tf.tensor1d(k.beta)] : []), tf.tensor1d(k.mean), tf.tensor1d(k.variance)]);
  const [x, dy] = [tf.tensor(k.x, k.shape), tf.tensor(k.dy, k.shape)];
  const optimizer = tf.train.sgd(k.lr);
  // kept and read after the steps: dataSync on webgpu reads through a canvas, which headless SwiftShader loses
  const kept: Tensor[] = [];
  // with no trainable weight (scale: false, center: false) a step is a training call without an optimizer
  const step = () =>
    k.scale || k.center
      ? optimizer.minimize(() => {
          const y = bn.apply(x, { training: true }) as Tensor;
          kept.push(tf.keep(y.clone()));
          return tf.sum(tf.mul(y, dy));
        })
      : void kept.push(tf.tidy(() => bn.apply(x, { training: true }) as Tensor));
  const kernels = await kernelsRunBy(step);
  step();
  step();
  const inference = bn.apply(x) as Tensor;
  const outputs = await Promise.all(kept.map(data));
  tf.dispose(kept);
  const out = { outputs, inference: await data(inference), weights: await Promise.all(bn.getWeights().map(data)), kernels };
  tf.dispose([x, dy, inference]);
  return out;
}

/** `steps` batches of model.fit on a conv net (default: the small one) on synthetic digits: the loss after each, and ms per step after the first. */
async function fit(steps: number, batch: number, net: ConvNetOptions = smallConvNet): Promise<{ losses: number[]; msPerStep: number }> {
  const { size } = net;
  const { images, labels } = syntheticDigits(batch * 4, 1, size);
  const model = convNet(tf, net);
  const [xs, ys] = [tf.tensor4d(images, [batch * 4, size, size, 1]), tf.oneHot(tf.tensor1d(labels, 'int32'), 10)];
  const losses: number[] = [];
  let start = 0;
  await model.fit(xs, ys, {
    batchSize: batch,
    epochs: Math.ceil(steps / 4),
    shuffle: false,
    callbacks: {
      onBatchEnd: (_, logs) => {
        if (losses.length === 0) start = performance.now();
        losses.push(Number(logs?.loss));
      },
    },
  });
  const msPerStep = (performance.now() - start) / Math.max(1, losses.length - 1);
  tf.dispose([xs, ys]);
  model.dispose();
  return { losses: losses.slice(0, steps), msPerStep };
}

const api = {
  /** Starts tfjs on `backend` and installs normkit; null where tfjs cannot start it here. */
  async start(backend: 'webgpu' | 'webgl'): Promise<{ backend: string; served: string[] } | null> {
    if (!(await tf.setBackend(backend))) return null;
    await tf.ready();
    await install();
    return { backend: tf.getBackend(), served: handle!.servedBackends() };
  },
  notices: () => [...notices],
  kernelBackends: (name: string) => ['cpu', 'webgpu', 'webgl'].filter((b) => registered(name, b) !== undefined),
  batchNorm: (k: BatchNormCase) => both(() => batchNorm(k)),
  training: (k: BatchNormCase & { readonly axis: number }) => training(k),
  statisticsGradient: (k: { shape: number[]; x: number[]; a: number[]; b: number[] }) => statisticsGradient(k),
  layer: (k: LayerCase) => both(() => layer(k)),
  layerNormkitOnly: (k: LayerCase) => layer(k),
  fit: (steps: number, batch: number) => both(() => fit(steps, batch)),
  /** ms per model.fit step of `net` on the current backend with normkit installed (scripts/tfjs-gpu-measure.ts). */
  fitTimed: async (steps: number, batch: number, net: ConvNetOptions) => (await fit(steps, batch, net)).msPerStep,
  restore: () => {
    handle?.restore();
  },
  /** After restore(): whether normkit's kernels and gradient are gone and stock tfjs's FusedBatchNorm is back on every backend. */
  restored(): { served: string[]; trainKernel: string[]; fusedIsStock: boolean[] } {
    const h = handle!;
    const before = ['cpu', 'webgpu'].map((b) => registered('FusedBatchNorm', b));
    h.restore();
    const after = ['cpu', 'webgpu'].map((b) => registered('FusedBatchNorm', b));
    const out = { served: h.servedBackends(), trainKernel: api.kernelBackends('NormkitBatchNormTrain'), fusedIsStock: after.map((k, i) => k !== undefined && k !== before[i]) };
    return out;
  },
  install,
};

declare global {
  interface Window {
    tfjsGpu?: typeof api;
  }
}
window.tfjsGpu = api;
