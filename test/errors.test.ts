// Every bad input gets a typed error naming what was expected and what came, and leaves the layer as it was.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NormkitError } from '../src/errors.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import { GroupNorm } from '../src/nn/groupnorm.ts';
import { InstanceNorm2d } from '../src/nn/instancenorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import type { Tensor } from '../src/tensor.ts';
import { expectUnchanged, f32, snapshot, trainedBatchNorm } from './helpers.ts';

describe('bad input', () => {
  it('wrong rank', () => {
    const { bn, dy } = trainedBatchNorm();
    expectUnchanged(bn, dy, () => bn.forward(f32([2, 3, 4])), 'rank', /BatchNorm2d: expected 4D input \(got 3D input\)/);
    const bn1 = new BatchNorm1d(3);
    expectUnchanged(bn1, null, () => bn1.forward(f32([2, 3, 4, 4])), 'rank', /expected 2D or 3D input \(got 4D input\)/);
  });

  it('channel count mismatch', () => {
    const { bn, dy } = trainedBatchNorm();
    expectUnchanged(bn, dy, () => bn.forward(f32([2, 4, 2, 2])), 'channels', /expected 3 channels \(channels-first\), got 4 in input of size \[2, 4, 2, 2\]/);
    const gn = new GroupNorm(2, 4);
    expectUnchanged(gn, null, () => gn.forward(f32([2, 6, 3])), 'channels', /expected 4 channels/);
  });

  it('data length not equal to the product of the shape', () => {
    const { bn, dy } = trainedBatchNorm();
    const x = { data: new Float32Array(23), shape: [2, 3, 2, 2] };
    expectUnchanged(bn, dy, () => bn.forward(x), 'length', /data length 23 does not match shape \[2, 3, 2, 2\] \(24 elements\)/);
  });

  it('dtype mismatch', () => {
    const { bn, dy } = trainedBatchNorm();
    const x = { data: new Float64Array(24), shape: [2, 3, 2, 2] };
    expectUnchanged(bn, dy, () => bn.forward(x), 'dtype', /expected input of dtype float32, got float64/);
    // what a JavaScript caller can pass: a plain array where a typed array belongs
    // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
    const plain: Tensor = JSON.parse('{"data": [1, 2, 3], "shape": [3]}');
    expectUnchanged(bn, dy, () => bn.forward(plain), 'dtype', /expected data as Float32Array or Float64Array, got Array/);
  });

  it('zero-size dimensions', () => {
    const { bn, dy } = trainedBatchNorm();
    expectUnchanged(bn, dy, () => bn.forward(f32([0, 3, 2, 2])), 'empty', /zero-size dimension, got input size \[0, 3, 2, 2\]/);
    expectUnchanged(bn, dy, () => bn.forward(f32([2, 3, 0, 2])), 'empty', /zero-size/);
  });

  it("one value per channel in training, with PyTorch's text", () => {
    const bn = new BatchNorm1d(3);
    expectUnchanged(bn, null, () => bn.forward(f32([1, 3])), 'single-value', /^Expected more than 1 value per channel when training, got input size \[1, 3\]$/);
    // eval with running statistics is fine
    bn.eval();
    assert.equal(bn.forward(f32([1, 3])).data.length, 3);
    const inorm = new InstanceNorm2d(2);
    expectUnchanged(inorm, null, () => inorm.forward(f32([2, 2, 1, 1])), 'single-value', /Expected more than 1 spatial element when training, got input size \[2, 2, 1, 1\]/);
  });

  it('backward before forward, and with a dy of the wrong shape or dtype', () => {
    const bn = new BatchNorm2d(3);
    expectUnchanged(bn, null, () => bn.backward(f32([2, 3, 2, 2])), 'no-forward', /BatchNorm2d: backward called before forward/);
    const trained = trainedBatchNorm();
    expectUnchanged(trained.bn, trained.dy, () => trained.bn.backward(f32([2, 3, 2, 3])), 'grad-shape', /expected grad_output of shape \[2, 3, 2, 2\] \(the last input's\), got \[2, 3, 2, 3\]/);
    const dy64 = { data: new Float64Array(24), shape: [2, 3, 2, 2] };
    expectUnchanged(trained.bn, trained.dy, () => trained.bn.backward(dy64), 'dtype', /expected grad_output of dtype float32, got float64/);
  });

  it('invalid options', () => {
    const bad: [() => unknown, RegExp][] = [
      [() => new BatchNorm2d(3, { eps: 0 }), /eps must be a finite number > 0, got 0/],
      [() => new BatchNorm2d(3, { eps: -1e-5 }), /eps must be a finite number > 0/],
      [() => new BatchNorm2d(3, { eps: Number.NaN }), /eps must be a finite number > 0, got NaN/],
      [() => new BatchNorm2d(3, { momentum: -0.1 }), /momentum must be a number in \[0, 1\] or null, got -0.1/],
      [() => new BatchNorm2d(3, { momentum: 1.5 }), /momentum must be a number in \[0, 1\] or null, got 1.5/],
      [() => new BatchNorm2d(0), /numFeatures must be a positive integer, got 0/],
      [() => new BatchNorm2d(2.5), /numFeatures must be a positive integer, got 2.5/],
      [() => new BatchNorm2d(-3), /numFeatures must be a positive integer, got -3/],
      [() => new GroupNorm(3, 4), /num_channels must be divisible by num_groups/],
      [() => new LayerNorm([]), /normalizedShape must have at least one dimension/],
      [() => new InstanceNorm2d(2, { momentum: 2 }), /momentum must be a number in \[0, 1\], got 2/],
    ];
    for (const [make, message] of bad) {
      assert.throws(make, (error: unknown) => error instanceof NormkitError && error.code === 'option' && message.test(error.message));
    }
  });

  it("LayerNorm's shape check uses PyTorch's text", () => {
    const ln = new LayerNorm(6);
    expectUnchanged(ln, null, () => ln.forward(f32([4, 5])), 'shape', /Given normalized_shape=\[6\], expected input with shape \[\*, 6\], but got input of size\[4, 5\]/);
  });
});

describe('non-finite policy', () => {
  const withNaN = (): Tensor => {
    const x = f32([4, 2]);
    x.data.set([1, 2, 3, Number.NaN, 5, 6, 7, 8]);
    return x;
  };

  it("'propagate' (default) lets NaN into the output and the running statistics, as PyTorch does", () => {
    const bn = new BatchNorm1d(2);
    const y = bn.forward(withNaN());
    assert.ok(Number.isNaN(y.data[1]));
    assert.ok(Number.isNaN(bn.runningMean![1]));
    assert.equal(bn.runningMean![0], Math.fround(0.1 * 4));
    assert.equal(bn.numBatchesTracked, 1);
  });

  it("'skip-update' propagates NaN in the output but keeps the running statistics and counter", () => {
    const bn = new BatchNorm1d(2, { nonFinite: 'skip-update' });
    const before = snapshot(bn);
    const y = bn.forward(withNaN());
    assert.ok(Number.isNaN(y.data[1]));
    assert.equal(snapshot(bn), before);
    bn.forward(f32([4, 2], 3));
    assert.equal(bn.numBatchesTracked, 1);
  });

  it("'throw' rejects the batch and changes nothing", () => {
    const bn = new BatchNorm1d(2, { nonFinite: 'throw' });
    expectUnchanged(bn, null, () => bn.forward(withNaN()), 'non-finite', /batch statistics are not finite/);
    const inf = f32([4, 2]);
    inf.data[0] = Number.POSITIVE_INFINITY;
    expectUnchanged(bn, null, () => bn.forward(inf), 'non-finite', /not finite/);
  });

  it('a state dict with NaN is rejected unless the policy is propagate', () => {
    const strictLayer = new BatchNorm1d(2, { nonFinite: 'throw' });
    const state = { weight: [1, 1], bias: [0, 0], running_mean: [0, Number.NaN], running_var: [1, 1], num_batches_tracked: 0 };
    assert.throws(() => { strictLayer.loadStateDict(state); }, /running_mean\[1\] is NaN/);
    assert.throws(() => { strictLayer.loadStateDict({ ...state, running_mean: [0, 0], running_var: [1, -1] }); }, /running_var\[1\] is negative/);
    assert.deepEqual(Array.from(strictLayer.runningMean!), [0, 0]);
    const propagating = new BatchNorm1d(2);
    propagating.loadStateDict(state);
    assert.ok(Number.isNaN(propagating.runningMean![1]));
  });
});
