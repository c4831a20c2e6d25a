// The family on one core: LayerNorm, GroupNorm, InstanceNorm and BatchNorm are settings of one computation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { statsIndexOf } from '../src/core/layout.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import { GroupNorm } from '../src/nn/groupnorm.ts';
import { InstanceNorm2d } from '../src/nn/instancenorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import { buildLayer, moduleNames } from '../src/nn/layers-by-name.ts';
import { randomCase } from '../src/cli/gradcheck.ts';
import { Random, maxAbsDiff, randomTensor } from './helpers.ts';

describe('one core, four norms', () => {
  it('GroupNorm with one group equals LayerNorm over (C, H, W) with per-channel affine', () => {
    const random = new Random(1);
    const x = randomTensor(random, [3, 4, 2, 3], 'float64', 2, 3);
    const dy = randomTensor(random, [3, 4, 2, 3]);
    const gn = new GroupNorm(1, 4, { dtype: 'float64' });
    const ln = new LayerNorm([4, 2, 3], { dtype: 'float64' });
    const w = [0.5, 1.5, -1, 2];
    const b = [0.1, 0.2, 0.3, 0.4];
    gn.weight!.data.set(w);
    gn.bias!.data.set(b);
    for (let i = 0; i < 24; i++) {
      ln.weight!.data[i] = w[Math.floor(i / 6)];
      ln.bias!.data[i] = b[Math.floor(i / 6)];
    }
    assert.ok(maxAbsDiff(gn.forward(x).data, ln.forward(x).data) < 1e-14);
    assert.ok(maxAbsDiff(gn.backward(dy).data, ln.backward(dy).data) < 1e-14);
    const lnPerChannel = w.map((_, c) => Array.from(ln.weight!.grad.slice(c * 6, c * 6 + 6)).reduce((s, v) => s + v, 0));
    assert.ok(maxAbsDiff(gn.weight!.grad, lnPerChannel) < 1e-13);
  });

  it('GroupNorm with C groups equals InstanceNorm', () => {
    const random = new Random(2);
    for (const layout of ['channels-first', 'channels-last'] as const) {
      const shape = layout === 'channels-first' ? [2, 3, 4, 2] : [2, 4, 2, 3];
      const x = randomTensor(random, shape, 'float64', -1, 2);
      const dy = randomTensor(random, shape);
      const gn = new GroupNorm(3, 3, { dtype: 'float64', layout });
      const inorm = new InstanceNorm2d(3, { dtype: 'float64', affine: true, layout });
      for (const layer of [gn, inorm]) layer.weight!.data.set([2, -1, 0.5]);
      assert.ok(maxAbsDiff(gn.forward(x).data, inorm.forward(x).data) < 1e-14);
      assert.ok(maxAbsDiff(gn.backward(dy).data, inorm.backward(dy).data) < 1e-14);
      assert.ok(maxAbsDiff(gn.weight!.grad, inorm.weight!.grad) < 1e-13);
    }
  });

  it('BatchNorm on (N, C) equals LayerNorm on its transpose', () => {
    const random = new Random(3);
    const [n, c] = [5, 3];
    const x = randomTensor(random, [n, c], 'float64', 4, 2);
    const dy = randomTensor(random, [n, c]);
    const transpose = (t: Float64Array, rows: number, cols: number) => t.map((_, i) => t[(i % rows) * cols + Math.floor(i / rows)]);
    const bn = new BatchNorm1d(c, { dtype: 'float64', affine: false });
    const ln = new LayerNorm(n, { dtype: 'float64', elementwiseAffine: false });
    const yb = bn.forward(x).data as Float64Array;
    const yl = ln.forward({ data: transpose(x.data as Float64Array, n, c), shape: [c, n] }).data as Float64Array;
    assert.ok(maxAbsDiff(transpose(yl, c, n), yb) < 1e-14);
    const dxb = bn.backward(dy).data as Float64Array;
    const dxl = ln.backward({ data: transpose(dy.data as Float64Array, n, c), shape: [c, n] }).data as Float64Array;
    assert.ok(maxAbsDiff(transpose(dxl, c, n), dxb) < 1e-14);
  });

  it('sum(dx) = 0 and sum(dx*xhat) = 0 in every statistics group of every norm', () => {
    const random = new Random(4);
    for (const module of moduleNames) {
      for (const layout of ['channels-first', 'channels-last'] as const) {
        const spec = randomCase(module, random, layout);
        const layer = buildLayer(module, { ...spec.options, eps: 1e-14 }, { dtype: 'float64', backend: 'js', layout: spec.layout });
        const x = randomTensor(random, spec.shape, 'float64', 3, 2);
        const y = layer.forward(x);
        const dx = layer.backward(randomTensor(random, spec.shape));
        const view = layer.viewOf(spec.shape);
        const sums = new Map<number, [number, number]>();
        // with weight 1 and bias 0, y is xhat
        assert.ok(layer.weight === null || layer.weight.data.every((v) => v === 1));
        for (let i = 0; i < x.data.length; i++) {
          const q = statsIndexOf(view, i);
          const [s1, s2] = sums.get(q) ?? [0, 0];
          sums.set(q, [s1 + dx.data[i], s2 + dx.data[i] * y.data[i]]);
        }
        for (const [s1, s2] of sums.values()) {
          assert.ok(Math.abs(s1) < 1e-12 && Math.abs(s2) < 1e-11, `${module} ${layout}: ${s1} ${s2}`);
        }
      }
    }
  });
});
