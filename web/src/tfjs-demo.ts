// The tfjs GPU demo (tfjs.html): a conv net trained on MNIST with tfjs's model.fit on its webgpu or webgl
// backend, with normkit/tfjs installed or not; each run's loss curve, ms per step and test accuracy.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import type { NormkitTfjs } from 'normkit/tfjs';
import { useNormkit } from 'normkit/tfjs';
import { convNet, mnistConvNet } from '../../src/demo/tfjs-convnet.ts';
import { Random } from '../../src/random.ts';
import { PER_DIGIT, SIDE } from './mnist-format.ts';

const PIXELS = SIDE * SIDE;
const BATCH = 32;
const TEST = 500;

interface Run {
  readonly backend: string;
  readonly normkit: boolean;
  readonly losses: number[];
  readonly msPerStep: number;
  readonly accuracy: number;
}

const element = <T extends HTMLElement>(id: string, type: new () => T): T => {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`tfjs.html lacks #${id}`);
  return found;
};
const status = element('status', HTMLParagraphElement);
const backendSelect = element('backend', HTMLSelectElement);
const normkitBox = element('use-normkit', HTMLInputElement);
const stepsInput = element('steps', HTMLInputElement);
const trainButton = element('train', HTMLButtonElement);
const chart = document.getElementById('chart');
const runsBody = element('runs', HTMLTableSectionElement);
const runs: Run[] = [];
let handle: NormkitTfjs | null = null;

/** The digits, shuffled once with a fixed seed: train first, the last TEST for testing. */
async function loadDigits(): Promise<{ images: Float32Array; labels: Int32Array; count: number }> {
  const bytes = new Uint8Array(await (await fetch(new URL('./mnist.bin', document.baseURI))).arrayBuffer());
  const count = 10 * PER_DIGIT;
  if (bytes.length !== count * PIXELS) throw new Error(`mnist.bin holds ${bytes.length} bytes, expected ${count * PIXELS}`);
  const order = Int32Array.from({ length: count }, (_, i) => i);
  const random = new Random(1);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  order.forEach((from, to) => {
    for (let p = 0; p < PIXELS; p++) images[to * PIXELS + p] = bytes[from * PIXELS + p] / 255;
    labels[to] = Math.floor(from / PER_DIGIT);
  });
  return { images, labels, count };
}

function draw(): void {
  if (chart === null) return;
  const all = runs.flatMap((r) => r.losses);
  const top = Math.max(...all, 1e-6);
  const longest = Math.max(...runs.map((r) => r.losses.length), 2);
  const lines = runs.map((r) => {
    const points = r.losses.map((l, i) => `${((i / (longest - 1)) * 580 + 10).toFixed(1)},${(230 - (l / top) * 220).toFixed(1)}`).join(' ');
    return `<polyline fill="none" stroke-width="1.5" class="${r.normkit ? 'normkit' : 'stock'}" points="${points}"><title>${r.backend}${r.normkit ? ' + normkit' : ''}</title></polyline>`;
  });
  chart.innerHTML = `<title id="chart-title">training loss per step (orange: stock tfjs, blue: normkit)</title>${lines.join('')}`;
}

function addRow(run: Run): void {
  const row = runsBody.insertRow();
  row.dataset.normkit = String(run.normkit);
  const cells = [run.backend, run.normkit ? 'on' : 'off', String(run.losses.length), run.msPerStep.toFixed(1), run.losses[0].toFixed(4), run.losses[run.losses.length - 1].toFixed(4), `${(100 * run.accuracy).toFixed(1)}%`];
  for (const text of cells) row.insertCell().textContent = text;
}

async function train(digits: { images: Float32Array; labels: Int32Array; count: number }): Promise<Run> {
  const backend = backendSelect.value;
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs's ${backend} backend does not start in this browser`);
  await tf.ready();
  if (normkitBox.checked) handle = await useNormkit(tf);
  else handle?.restore();
  const steps = Math.max(1, Math.min(2000, Math.floor(Number(stepsInput.value)) || 100));
  const trainCount = digits.count - TEST;
  // as many digits as the steps take (an epoch of model.fit runs to its end)
  const used = Math.min(trainCount, steps * BATCH);
  const model = convNet(tf, mnistConvNet);
  const [xs, ys] = tf.tidy(() => [tf.tensor4d(digits.images.subarray(0, used * PIXELS), [used, SIDE, SIDE, 1]), tf.oneHot(tf.tensor1d(digits.labels.subarray(0, used), 'int32'), 10)]);
  const losses: number[] = [];
  let start = 0;
  const perEpoch = Math.ceil(used / BATCH);
  await model.fit(xs, ys, {
    batchSize: BATCH,
    epochs: Math.ceil(steps / perEpoch),
    shuffle: false,
    callbacks: {
      onBatchEnd: (_, logs) => {
        if (losses.length === 0) start = performance.now();
        losses.push(Number(logs?.loss));
        status.textContent = `training on ${backend}${normkitBox.checked ? ' with normkit' : ''}: step ${losses.length} of ${steps}`;
        // tfjs-layers checks this after each batch
        if (losses.length >= steps) model.stopTraining = true;
      },
    },
  });
  const msPerStep = (performance.now() - start) / Math.max(1, losses.length - 1);
  const predicted = tf.tidy(() => (model.predict(tf.tensor4d(digits.images.subarray(trainCount * PIXELS), [TEST, SIDE, SIDE, 1])) as tf.Tensor).argMax(-1));
  const guesses = await predicted.data();
  const test = digits.labels.subarray(trainCount);
  const accuracy = test.reduce((hits, label, i) => hits + (guesses[i] === label ? 1 : 0), 0) / TEST;
  tf.dispose([xs, ys, predicted]);
  model.dispose();
  return { backend, normkit: normkitBox.checked, losses: losses.slice(0, steps), msPerStep, accuracy };
}

async function main(): Promise<void> {
  const gpu = 'gpu' in navigator && (await navigator.gpu.requestAdapter()) !== null;
  if (!gpu) backendSelect.value = 'webgl';
  const digits = await loadDigits();
  status.textContent = `ready: ${digits.count - TEST} training digits, ${TEST} test digits; tfjs ${tf.version.tfjs}${gpu ? '' : ' (no WebGPU adapter here: webgl)'}`;
  trainButton.disabled = false;
  element('controls', HTMLFormElement).addEventListener('submit', (event) => {
    event.preventDefault();
    trainButton.disabled = true;
    train(digits)
      .then((run) => {
        runs.push(run);
        addRow(run);
        draw();
        status.textContent = `done: ${run.backend}${run.normkit ? ' with normkit' : ''}, ${run.msPerStep.toFixed(1)} ms per step`;
        status.dataset.runs = String(runs.length);
      })
      .catch((error: unknown) => {
        status.textContent = `failed: ${error instanceof Error ? error.message : String(error)}`;
      })
      .finally(() => {
        trainButton.disabled = false;
      });
  });
}

trainButton.disabled = true;
main().catch((error: unknown) => {
  status.textContent = `failed to start: ${error instanceof Error ? error.message : String(error)}`;
});
