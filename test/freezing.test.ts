// Freezing: statistics (a BatchNorm in eval inside a training model), affine (requiresGrad = false), FrozenBatchNorm2d.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toChannelsLast } from '../src/core/transpose.ts';
import { gradcheck } from '../src/gradcheck.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import { FrozenBatchNorm2d } from '../src/nn/frozen.ts';
import { Linear } from '../src/nn/linear.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { SGD } from '../src/nn/sgd.ts';
import { Random, maxAbsDiff, randomTensor, snapshot } from './helpers.ts';

describe('freezing', () => {
  it('statistics: a BatchNorm in eval inside a training model uses and keeps its running statistics; gradients still flow', () => {
    const random = new Random(1);
    const bn = new BatchNorm1d(3, { dtype: 'float64' });
    bn.loadStateDict({ weight: [1, 2, 3], bias: [0, 0, 1], running_mean: [0.5, -0.5, 1], running_var: [2, 0.5, 1], num_batches_tracked: 9 });
    const linear = new Linear(4, 3, { dtype: 'float64' });
    const model = new Sequential(linear, bn).train();
    bn.eval();
    const stats = JSON.stringify(bn.stateDict(), (_k, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v));
    const x = randomTensor(random, [5, 4]);
    const h = linear.forward(x);
    const y = model.forward(x);
    const dy = randomTensor(random, [5, 3]);
    model.backward(dy);
    assert.equal(JSON.stringify(bn.stateDict(), (_k, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v)), stats);
    for (let i = 0; i < y.data.length; i++) {
      const c = i % 3;
      const rstd = 1 / Math.sqrt(bn.runningVar![c] + bn.eps);
      assert.ok(Math.abs(y.data[i] - ((h.data[i] - bn.runningMean![c]) * rstd * bn.weight!.data[c] + bn.bias!.data[c])) < 1e-12);
    }
    // the Linear before it learns through dx = dy*weight*rstd
    assert.ok(linear.weight.grad.some((g) => g !== 0));
  });

  it('affine: weight.requiresGrad = false accumulates nothing, SGD skips it, dx is unchanged; bias still learns', () => {
    const random = new Random(2);
    const x = randomTensor(random, [4, 3, 2, 2], 'float32', 1, 2);
    const dy = randomTensor(random, [4, 3, 2, 2], 'float32');
    const frozen = new BatchNorm2d(3);
    const free = new BatchNorm2d(3);
    frozen.weight!.requiresGrad = false;
    const dxFrozen = (frozen.forward(x), frozen.backward(dy));
    const dxFree = (free.forward(x), free.backward(dy));
    assert.deepEqual(Array.from(dxFrozen.data), Array.from(dxFree.data));
    assert.ok(frozen.weight!.grad.every((g) => g === 0));
    assert.deepEqual(Array.from(frozen.bias!.grad), Array.from(free.bias!.grad));
    const weightBefore = Array.from(frozen.weight!.data);
    const biasBefore = Array.from(frozen.bias!.data);
    // even a gradient set by hand is not applied
    frozen.weight!.grad.fill(1);
    new SGD(frozen.parameters(), { lr: 0.1 }).step();
    assert.deepEqual(Array.from(frozen.weight!.data), weightBefore);
    assert.notDeepEqual(Array.from(frozen.bias!.data), biasBefore);
  });

  it('Linear: frozen weight and bias get no gradient, dx still flows', () => {
    const linear = new Linear(3, 2, { dtype: 'float64' });
    linear.weight.requiresGrad = false;
    linear.bias!.requiresGrad = false;
    const x = randomTensor(new Random(3), [4, 3]);
    linear.forward(x);
    const dx = linear.backward(randomTensor(new Random(4), [4, 2]));
    assert.ok(linear.weight.grad.every((g) => g === 0) && linear.bias!.grad.every((g) => g === 0));
    assert.ok(dx.data.some((v) => v !== 0));
  });
});

describe('FrozenBatchNorm2d (torchvision)', () => {
  it('y = x*scale + shift, dx = dy*scale, in both layouts, and no parameters', () => {
    const random = new Random(5);
    for (const layout of ['channels-first', 'channels-last'] as const) {
      const frozen = new FrozenBatchNorm2d(2, { dtype: 'float64', layout });
      frozen.loadStateDict({ weight: [2, -1], bias: [0.5, 1], running_mean: [1, -2], running_var: [4, 0.25] });
      const xf = randomTensor(random, [3, 2, 2, 2]);
      const dyf = randomTensor(random, [3, 2, 2, 2]);
      const cl = (t: { data: Float64Array | Float32Array; shape: readonly number[] }) => (layout === 'channels-last' ? toChannelsLast(t.data, t.shape) : t);
      const y = frozen.forward(cl(xf));
      const dx = frozen.backward(cl(dyf));
      const scale = [2 / Math.sqrt(4 + 1e-5), -1 / Math.sqrt(0.25 + 1e-5)];
      const shift = [0.5 - 1 * scale[0], 1 + 2 * scale[1]];
      const c = (i: number) => Math.floor(i / 4) % 2;
      assert.ok(maxAbsDiff(y.data, cl({ data: xf.data.map((v, i) => v * scale[c(i)] + shift[c(i)]), shape: xf.shape }).data) < 1e-14);
      assert.ok(maxAbsDiff(dx.data, cl({ data: dyf.data.map((v, i) => v * scale[c(i)]), shape: xf.shape }).data) < 1e-14);
      assert.deepEqual(frozen.parameters(), []);
    }
  });

  it("loads a BatchNorm2d state dict (num_batches_tracked dropped) and then equals that BatchNorm2d's eval", () => {
    const random = new Random(6);
    const bn = new BatchNorm2d(3);
    for (let k = 0; k < 4; k++) bn.forward(randomTensor(random, [4, 3, 2, 2], 'float32', 3, 2));
    bn.weight!.data.set([0.5, 1.5, -1]);
    bn.eval();
    const frozen = new FrozenBatchNorm2d(3);
    frozen.loadStateDict(bn.stateDict());
    assert.deepEqual(Object.keys(frozen.stateDict()), ['weight', 'bias', 'running_mean', 'running_var']);
    const x = randomTensor(random, [2, 3, 2, 2], 'float32');
    assert.ok(maxAbsDiff(frozen.forward(x).data, bn.forward(x).data) < 1e-6);
    // strict: a missing buffer is an error and nothing changes
    const before = snapshot(frozen);
    assert.throws(() => { frozen.loadStateDict({ weight: [1, 1, 1], bias: [0, 0, 0], running_mean: [0, 0, 0] }); }, /Missing key\(s\) in state_dict: "running_var"/);
    assert.throws(() => { frozen.loadStateDict({ ...bn.stateDict(), running_var: [1, -1, 1] }); }, /running_var\[1\] is negative/);
    assert.equal(snapshot(frozen), before);
    assert.throws(() => frozen.forward(randomTensor(random, [2, 4, 2, 2], 'float32')), /expected 3 channels/);
    assert.throws(() => frozen.forward(randomTensor(random, [2, 3, 2], 'float32')), /expected 4D input \(got 3D input\)/);
  });

  it('gradcheck (dx; there are no parameters)', () => {
    const frozen = new FrozenBatchNorm2d(3, { dtype: 'float64' });
    frozen.loadStateDict({ weight: [1.5, -0.5, 2], bias: [0, 1, 2], running_mean: [0.5, 0, -1], running_var: [2, 0.3, 1], num_batches_tracked: 3 });
    const result = gradcheck(frozen, randomTensor(new Random(7), [2, 3, 2, 2]));
    assert.ok(result.ok, JSON.stringify(result.entries.map((e) => [e.input, e.worstRatio])));
    assert.deepEqual(result.entries.map((e) => e.input), ['x']);
  });
});
