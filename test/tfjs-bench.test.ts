// The benchmark's tfjs-cpu+normkit and tfjs-wasm+normkit systems: right outputs, and tfjs's own kernels back after each call.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expected } from '../src/bench/expected.ts';
import { makeData } from '../src/bench/harness.ts';
import { loadTf } from '../src/bench/peers/tfjs.ts';
import { tfjsNormkitSystem } from '../src/bench/peers/tfjs-normkit.ts';
import { shapeSpecs } from '../src/bench/types.ts';
import { normalizedError } from '../src/conformance/compare.ts';

describe('bench systems tfjs-*+normkit', () => {
  const spec = shapeSpecs.find((s) => s.name === 'C' && s.layout === 'channels-first');
  assert.ok(spec !== undefined);
  const data = makeData(spec);
  const truth = expected(data);
  for (const system of [tfjsNormkitSystem('cpu'), tfjsNormkitSystem('wasm')]) {
    it(`${system.name}: forward, forward+backward and inference match the float64 expectation; normkit is removed after each sample`, async () => {
      assert.ok(system.supports(spec));
      const prepared = await system.prepare(data);
      const tf = await loadTf(system.name.includes('wasm') ? 'wasm' : 'cpu');
      const own = tf.getKernel('FusedBatchNorm', tf.getBackend());
      try {
        for (const op of ['forward', 'forward+backward', 'inference'] as const) {
          const error = normalizedError(await prepared.result(op), truth[op]);
          assert.ok(error < 1e-5, `${op}: error ${error}`);
          await prepared.beforeSample?.();
          assert.notEqual(tf.getKernel('FusedBatchNorm', tf.getBackend()), own, 'normkit is installed for the sample');
          await prepared.run[op]?.();
          prepared.afterSample?.();
          assert.equal(tf.getKernel('FusedBatchNorm', tf.getBackend()), own, 'tfjs\'s own kernel is back for the other systems');
        }
      } finally {
        prepared.dispose();
      }
    });
  }
});
