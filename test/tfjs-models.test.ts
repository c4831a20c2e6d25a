// Real models with model.fit on TensorFlow.js, without and with normkit: the same loss curve within float
// rounding (the few-hundred-step run is scripts/tfjs-train.ts; this is its short copy).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildModel, compareTraining } from '../scripts/tfjs-train.ts';
import type { ModelName } from '../scripts/tfjs-train.ts';
import { loadTf } from '../src/bench/peers/tfjs.ts';
import { useNormkit } from '../src/tfjs/index.ts';

// both backends registered; each test sets its own
const tf = await loadTf('wasm');
const STEPS = 10;

const cases: readonly ['cpu' | 'wasm', ModelName][] = [
  ['cpu', 'mlp'],
  ['cpu', 'conv'],
  ['wasm', 'mlp'], // tfjs's wasm backend cannot train conv nets (no Conv2DBackpropFilter kernel)
];

describe('normkit/tfjs in model.fit', () => {
  for (const [backend, name] of cases) {
    it(`${name} on tfjs's ${backend} backend: a training step runs normkit's fused kernels, none left to tfjs`, async () => {
      await tf.setBackend(backend);
      const notices: string[] = [];
      const handle = await useNormkit(tf, { onFallback: (m) => notices.push(m) });
      try {
        const model = buildModel(tf, name, 1);
        const shape = name === 'mlp' ? [8, 784] : [8, 14, 14, 1];
        const [x, y] = [tf.randomUniform(shape, 0, 1, 'float32', 3), tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10)];
        const profile = await tf.profile(async () => {
          await model.trainOnBatch(x, y);
        });
        assert.ok(profile.kernelNames.includes('NormkitBatchNormTrain'), profile.kernelNames.join(', '));
        assert.ok(profile.kernelNames.includes('NormkitBatchNormTrainGrad'));
        assert.ok(!profile.kernelNames.includes('Moments') && !profile.kernelNames.includes('FusedBatchNorm'));
        const inference = await tf.profile(() => model.predict(x));
        assert.ok(inference.kernelNames.includes('FusedBatchNorm'));
        assert.deepEqual(notices, []);
        tf.dispose([x, y]);
        model.dispose();
      } finally {
        handle.restore();
      }
    });

    it(`${name} on tfjs's ${backend} backend: ${STEPS} steps of model.fit give stock tfjs's loss curve and weights within float rounding`, async () => {
      const { stock, normkit, lossDiff, weightDiff } = await compareTraining(tf, backend, name, STEPS);
      assert.equal(stock.losses.length, STEPS);
      assert.equal(normkit.losses.length, STEPS);
      assert.ok(stock.losses[STEPS - 1] < stock.losses[0], 'the model learns');
      assert.ok(lossDiff < 1e-5, `loss curves differ by ${lossDiff}`);
      assert.ok(weightDiff < 1e-4, `weights differ by ${weightDiff}`);
    });
  }
});
