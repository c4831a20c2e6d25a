/**
 * Real models trained with model.fit on TensorFlow.js, without and with normkit (`useNormkit`): the
 * demo's MNIST network (784-100-100-100-10, BatchNormalization before each sigmoid, SGD lr 0.5, batch 60)
 * and a small conv net on 14x14 digits (conv2d + batchNormalization twice, channels last; SGD lr 0.05). Same seeds, data and order for both
 * runs; prints the largest loss difference over the curve, the final weights' difference and the time per
 * training step, per tfjs backend. The conv net runs on the cpu backend only: tfjs 4.22's wasm backend has no
 * Conv2DBackpropFilter kernel, so no conv net trains there, with or without normkit.
 *
 *   node --import tsx scripts/tfjs-train.ts [--steps 300] [--backends cpu,wasm] [--models mlp,conv] [--control]
 *
 * --control adds a third run, stock tfjs on inputs nudged by one float32 ulp: how far float rounding
 * alone moves the curve of that model (conv nets with ReLU and max-pooling amplify it).
 *
 * test/tfjs-models.test.ts runs the same code for a few steps.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Tf } from '../src/bench/peers/tfjs.ts';
import { loadTf } from '../src/bench/peers/tfjs.ts';
import { normalizedError } from '../src/conformance/compare.ts';
import { loadDigits, PIXELS } from '../src/demo/data.ts';
import { useNormkit } from '../src/tfjs/index.ts';

type LayersModel = import('@tensorflow/tfjs').LayersModel;

export type ModelName = 'mlp' | 'conv';

/** The model, with seeded initializers so every build starts from the same weights. */
export function buildModel(tf: Tf, name: ModelName, seed: number): LayersModel {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed * 10 + k });
  const model = tf.sequential();
  if (name === 'mlp') {
    for (let k = 0; k < 3; k++) {
      model.add(tf.layers.dense({ units: 100, kernelInitializer: init(k), ...(k === 0 ? { inputShape: [PIXELS] } : {}) }));
      model.add(tf.layers.batchNormalization());
      model.add(tf.layers.activation({ activation: 'sigmoid' }));
    }
    model.add(tf.layers.dense({ units: 10, kernelInitializer: init(3), activation: 'softmax' }));
  } else {
    model.add(tf.layers.conv2d({ inputShape: [14, 14, 1], filters: 8, kernelSize: 3, kernelInitializer: init(0) }));
    model.add(tf.layers.batchNormalization());
    model.add(tf.layers.activation({ activation: 'relu' }));
    model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    model.add(tf.layers.conv2d({ filters: 16, kernelSize: 3, kernelInitializer: init(1) }));
    model.add(tf.layers.batchNormalization());
    model.add(tf.layers.activation({ activation: 'relu' }));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({ units: 10, kernelInitializer: init(2), activation: 'softmax' }));
  }
  model.compile({ optimizer: tf.train.sgd(name === 'mlp' ? 0.5 : 0.05), loss: 'categoricalCrossentropy' });
  return model;
}

export interface TrainRun {
  /** The loss of every step (batch), in order. */
  readonly losses: number[];
  readonly msPerStep: number;
  /** Every weight after training (moving statistics included), flattened in model order. */
  readonly weights: Float32Array;
}

const BATCH = 60;

/** Trains `name` for `steps` batches of 60 MNIST digits with model.fit (no shuffling), on tfjs's current backend. */
export async function trainModel(tf: Tf, name: ModelName, steps: number, seed = 1, nudge = false): Promise<TrainRun> {
  const perEpoch = Math.min(steps, 100);
  if (steps % perEpoch !== 0) throw new Error(`--steps must be a multiple of 100 above 100, got ${steps}`);
  const { train } = loadDigits(perEpoch * BATCH, seed);
  const model = buildModel(tf, name, seed);
  // the conv net sees 14x14 digits (2x2 averages): tfjs's cpu conv kernels take seconds a step at 28x28
  const x = tf.tidy(() => {
    const images = name === 'mlp' ? tf.tensor2d(train.images, [train.count, PIXELS]) : tf.avgPool(tf.tensor4d(train.images, [train.count, 28, 28, 1]), 2, 2, 'valid');
    // nudge: every input moved by at most one float32 ulp (x*(1 + 2^-23)), to see how far rounding alone carries
    return nudge ? tf.mul(images, 1 + 2 ** -23) : images;
  });
  const y = tf.oneHot(tf.tensor1d(train.labels, 'int32'), 10);
  const losses: number[] = [];
  const start = performance.now();
  await model.fit(x, y, {
    batchSize: BATCH,
    epochs: steps / perEpoch,
    shuffle: false,
    verbose: 0,
    callbacks: { onBatchEnd: (_batch, logs) => { losses.push(logs?.loss ?? Number.NaN); } },
  });
  const msPerStep = (performance.now() - start) / steps;
  const weights = Float32Array.from(model.getWeights().flatMap((w) => Array.from(w.dataSync())));
  tf.dispose([x, y]);
  model.dispose();
  return { losses, msPerStep, weights };
}

export interface Comparison {
  readonly stock: TrainRun;
  readonly normkit: TrainRun;
  /** max |loss_normkit - loss_stock| / max(|loss_stock|) over the curve */
  readonly lossDiff: number;
  /** max |w_normkit - w_stock| / max |w_stock| over every weight */
  readonly weightDiff: number;
  /** With `control`: the same two measures between stock tfjs and stock tfjs on inputs nudged by one ulp. */
  readonly control?: { readonly lossDiff: number; readonly weightDiff: number };
}

/** The same training on `backend` with tfjs's own kernels, then with normkit's. */
export async function compareTraining(tf: Tf, backend: 'cpu' | 'wasm', name: ModelName, steps: number, control = false): Promise<Comparison> {
  await tf.setBackend(backend);
  const stock = await trainModel(tf, name, steps);
  const nudged = control ? await trainModel(tf, name, steps, 1, true) : null;
  const handle = await useNormkit(tf);
  try {
    const normkit = await trainModel(tf, name, steps);
    return {
      stock,
      normkit,
      lossDiff: normalizedError(normkit.losses, stock.losses),
      weightDiff: normalizedError(normkit.weights, stock.weights),
      ...(nudged === null ? {} : { control: { lossDiff: normalizedError(nudged.losses, stock.losses), weightDiff: normalizedError(nudged.weights, stock.weights) } }),
    };
  } finally {
    handle.restore();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { steps: { type: 'string', default: '300' }, backends: { type: 'string', default: 'cpu,wasm' }, models: { type: 'string', default: 'mlp,conv' }, control: { type: 'boolean', default: false } },
  });
  const steps = Number(values.steps);
  // loadTf('wasm') registers both backends (and starts wasm); compareTraining sets the backend of each run
  const tf = await loadTf('wasm');
  console.log(`tfjs ${tf.version.tfjs}, ${steps} steps of batch ${BATCH}, model.fit without and with useNormkit`);
  const controlHeader = values.control ? ' control: stock vs stock on inputs nudged by 1 ulp, loss / weights diff |' : '';
  console.log(`| backend | model | max loss diff (rel.) | final weights diff (rel.) | final loss stock / normkit | ms/step stock | ms/step +normkit | speed-up |${controlHeader}`);
  console.log(`|---|---|---|---|---|---|---|---|${values.control ? '---|' : ''}`);
  for (const backend of values.backends.split(',')) {
    if (backend !== 'cpu' && backend !== 'wasm') throw new Error(`unknown backend ${backend}`);
    for (const name of values.models.split(',')) {
      if (name !== 'mlp' && name !== 'conv') throw new Error(`unknown model ${name}`);
      if (backend === 'wasm' && name === 'conv') {
        // stock tfjs too: conv2d's gradient needs it
        console.log(`| wasm | conv | not run: tfjs's wasm backend has no Conv2DBackpropFilter kernel | | | | | |`);
        continue;
      }
      const { stock, normkit, lossDiff, weightDiff, control } = await compareTraining(tf, backend, name, steps, values.control);
      const last = (r: TrainRun) => r.losses[r.losses.length - 1].toFixed(4);
      const controlCell = control === undefined ? '' : ` ${control.lossDiff.toExponential(3)} / ${control.weightDiff.toExponential(3)} |`;
      console.log(`| ${backend} | ${name} | ${lossDiff.toExponential(3)} | ${weightDiff.toExponential(3)} | ${last(stock)} / ${last(normkit)} | ${stock.msPerStep.toFixed(1)} | ${normkit.msPerStep.toFixed(1)} | ${(stock.msPerStep / normkit.msPerStep).toFixed(2)}x |${controlCell}`);
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
