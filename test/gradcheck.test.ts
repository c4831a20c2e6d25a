// Central differences in float64 on random shapes, both layouts; float32 gradients against the float64 ones.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomCase, runGradcheck } from '../src/cli/gradcheck.ts';
import { gradcheck } from '../src/gradcheck.ts';
import type { Module } from '../src/nn/module.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import { buildLayer, hasLayout, moduleNames } from '../src/nn/layers-by-name.ts';
import { Random, maxAbsDiff, randomTensor } from './helpers.ts';

describe('gradcheck', () => {
  for (const module of moduleNames) {
    for (const layout of hasLayout(module) ? (['channels-first', 'channels-last'] as const) : (['channels-first'] as const)) {
      it(`${module} ${layout}: random shapes, train and eval`, () => {
        const random = new Random(module.length * 31 + layout.length);
        for (let k = 0; k < 3; k++) {
          const c = randomCase(module, random, layout);
          for (const evalMode of [false, true]) {
            const result = runGradcheck(c, 100 + k, evalMode);
            assert.ok(result.ok, JSON.stringify({ c, evalMode, entries: result.entries }));
            assert.equal(result.entries[0].count, c.shape.reduce((p, d) => p * d, 1));
          }
        }
      });
    }
  }

  it('float32 gradients match the gradchecked float64 ones to float32 rounding', () => {
    const random = new Random(5);
    for (const module of moduleNames) {
      const c = randomCase(module, random, 'channels-first');
      const x64 = randomTensor(random, c.shape, 'float64', 1, 2);
      const x32 = { data: Float32Array.from(x64.data), shape: c.shape };
      const dy64 = randomTensor(random, c.shape, 'float64');
      const dy32 = { data: Float32Array.from(dy64.data), shape: c.shape };
      const l64 = buildLayer(module, c.options, { dtype: 'float64', backend: 'js', layout: 'channels-first' });
      const l32 = buildLayer(module, c.options, { dtype: 'float32', backend: 'js', layout: 'channels-first' });
      l64.forward({ data: Float64Array.from(x32.data), shape: c.shape });
      const dx64 = l64.backward({ data: Float64Array.from(dy32.data), shape: c.shape });
      l32.forward(x32);
      const dx32 = l32.backward(dy32);
      const scale = Math.max(...Array.from(dx64.data, Math.abs), 1e-12);
      assert.ok(maxAbsDiff(dx32.data, dx64.data) / scale < 1e-6, module);
      if (l64.weight) assert.ok(maxAbsDiff(l32.weight!.grad, l64.weight.grad) / Math.max(...Array.from(l64.weight.grad, Math.abs)) < 1e-6);
    }
  });

  it('fails a module whose backward is wrong, and restores its state', () => {
    const bn = new BatchNorm2d(2, { dtype: 'float64' });
    // dx off by 1e-3 on every other element
    const broken: Module = {
      name: 'broken',
      forward: (x) => bn.forward(x),
      backward: (dy) => {
        const dx = bn.backward(dy);
        return { data: dx.data.map((v, i) => v + 1e-3 * (i % 2)), shape: dx.shape };
      },
      parameters: () => bn.parameters(),
      zeroGrad: () => {
        bn.zeroGrad();
      },
      stateDict: () => bn.stateDict(),
      loadStateDict: (s) => {
        bn.loadStateDict(s);
      },
    };
    const before = JSON.stringify(Object.entries(bn.stateDict()).map(([k, v]) => [k, typeof v === 'number' ? v : Array.from(v)]));
    const result = gradcheck(broken, randomTensor(new Random(1), [3, 2, 2, 2]));
    assert.equal(result.ok, false);
    assert.equal(result.entries[0].ok, false);
    assert.equal(result.entries[1].ok, true);
    assert.equal(JSON.stringify(Object.entries(bn.stateDict()).map(([k, v]) => [k, typeof v === 'number' ? v : Array.from(v)])), before);
  });

  it('refuses float32 input', () => {
    const bn = new BatchNorm2d(2);
    assert.throws(() => gradcheck(bn, { data: new Float32Array(8), shape: [2, 2, 2, 1] }), /gradcheck needs float64/);
  });
});
