/**
 * Copies or none: normkit inside tfjs with its wasm kernels (tfjs's arrays copied into normkit's wasm
 * memory and back) against its js kernels (reading and writing tfjs's arrays in place), on tfjs's cpu and
 * wasm backends, shape A channels last (32x56x56x64), one thread. Median ms of 5 calls after a warm-up.
 *
 *   node --import tsx scripts/tfjs-copies.ts
 */
import { loadTf } from '../src/bench/peers/tfjs.ts';
import { medianMs } from '../src/bench/timing.ts';
import { useNormkit } from '../src/tfjs/index.ts';

// both backends registered; the loop below sets each in turn
const tf = await loadTf('wasm');
const time = (fn: () => void): number => medianMs(fn, 5);
console.log('| tfjs backend | kernels | inference (tf.batchNorm) ms | training forward (batchNormTraining) ms |');
console.log('|---|---|---|---|');
for (const backend of ['cpu', 'wasm'] as const) {
  await tf.setBackend(backend);
  const x = tf.randomNormal([32, 56, 56, 64], 0.5, 2);
  const [mean, variance, scale, offset] = [tf.zeros([64]), tf.ones([64]), tf.ones([64]), tf.zeros([64])];
  for (const kernels of ['wasm', 'js'] as const) {
    const handle = await useNormkit(tf, { kernels });
    // tidy bodies return nothing: tfjs walks a returned typed array element by element looking for tensors
    const inference = time(() => tf.tidy(() => { tf.batchNorm(x, mean, variance, offset, scale).dataSync(); }));
    const forward = time(() => tf.tidy(() => { handle.batchNormTraining(x, { scale, offset }).y.dataSync(); }));
    console.log(`| ${backend} | ${kernels} | ${inference.toFixed(1)} | ${forward.toFixed(1)} |`);
    handle.restore();
  }
  tf.dispose([x, mean, variance, scale, offset]);
}
