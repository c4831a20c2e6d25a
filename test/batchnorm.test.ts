// PyTorch semantics of the layers: statistics, running updates, eval, gradients.
import assert from 'node:assert/strict';
import { BatchNorm1d, BatchNorm2d, BatchNorm3d } from '../src/nn/batchnorm.ts';
import { InstanceNorm1d } from '../src/nn/instancenorm.ts';
import type { Tensor } from '../src/tensor.ts';
import { describeBackends } from './backends.ts';
import { Random, maxAbsDiff, randomTensor } from './helpers.ts';

/** Per-channel values of an (N, C, P) channels-first tensor. */
function channel(t: Tensor, c: number): number[] {
  const [n, ch] = t.shape;
  const p = t.data.length / (n * ch);
  const out: number[] = [];
  for (let a = 0; a < n; a++) for (let s = 0; s < p; s++) out.push(t.data[(a * ch + c) * p + s]);
  return out;
}

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
const biasedVar = (v: number[]) => mean(v.map((x) => (x - mean(v)) ** 2));

describeBackends('BatchNorm semantics', ({ name: backend, it }) => {
  const f64 = { dtype: 'float64', why: 'compared to float64 rounding' } as const;
  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: training output has mean 0 and variance 1 per channel (before affine)`, { dtype }, () => {
      const bn = new BatchNorm2d(3, { backend, dtype, eps: 1e-12 });
      const y = bn.forward(randomTensor(new Random(1), [4, 3, 5, 6], dtype, 7, 3));
      for (let c = 0; c < 3; c++) {
        const v = channel(y, c);
        assert.ok(Math.abs(mean(v)) < (dtype === 'float32' ? 1e-6 : 1e-14));
        assert.ok(Math.abs(biasedVar(v) - 1) < (dtype === 'float32' ? 1e-6 : 1e-12));
      }
    });
  }

  it('sum(dx) = 0 and sum(dx*xhat) = 0 per channel in training', f64, () => {
    const random = new Random(2);
    // sum(dx*xhat) is exactly 0 only as eps -> 0 (sum xhat^2 = M var/(var+eps)): take a tiny eps
    const bn = new BatchNorm2d(3, { backend, dtype: 'float64', eps: 1e-14 });
    bn.weight!.data.set([0.5, 2, -1]);
    const x = randomTensor(random, [3, 3, 4, 4], 'float64', 2, 5);
    bn.forward(x);
    const dx = bn.backward(randomTensor(random, [3, 3, 4, 4]));
    for (let c = 0; c < 3; c++) {
      const xs = channel(x, c);
      const mu = mean(xs);
      const sd = Math.sqrt(biasedVar(xs) + 1e-14);
      const d = channel(dx, c);
      assert.ok(Math.abs(d.reduce((s, v) => s + v, 0)) < 1e-12);
      assert.ok(Math.abs(d.reduce((s, v, i) => s + v * ((xs[i] - mu) / sd), 0)) < 1e-12);
    }
  });

  it('updates running statistics by the closed form over several steps (momentum 0.1, unbiased variance)', f64, () => {
    const random = new Random(3);
    const bn = new BatchNorm1d(2, { backend, dtype: 'float64' });
    let rm = [0, 0];
    let rv = [1, 1];
    for (let step = 1; step <= 4; step++) {
      const x = randomTensor(random, [5, 2, 3], 'float64', step, step);
      bn.forward(x);
      rm = rm.map((r, c) => 0.9 * r + 0.1 * mean(channel(x, c)));
      rv = rv.map((r, c) => 0.9 * r + 0.1 * biasedVar(channel(x, c)) * (15 / 14));
      assert.ok(maxAbsDiff(bn.runningMean!, rm) < 1e-14);
      assert.ok(maxAbsDiff(bn.runningVar!, rv) < 1e-13);
      assert.equal(bn.numBatchesTracked, step);
    }
  });

  it('momentum null keeps the cumulative average of the batch statistics', f64, () => {
    const random = new Random(4);
    const bn = new BatchNorm1d(1, { backend, dtype: 'float64', momentum: null });
    const means: number[] = [];
    for (let step = 0; step < 5; step++) {
      const x = randomTensor(random, [8, 1], 'float64', step * 3, 1);
      means.push(mean(Array.from(x.data)));
      bn.forward(x);
    }
    assert.ok(Math.abs(bn.runningMean![0] - mean(means)) < 1e-14);
  });

  it('eval uses running statistics and changes nothing; without tracking it uses batch statistics', f64, () => {
    const random = new Random(5);
    const bn = new BatchNorm2d(2, { backend, dtype: 'float64' });
    bn.loadStateDict({ weight: [2, 3], bias: [1, -1], running_mean: [1, 2], running_var: [4, 9], num_batches_tracked: 7 });
    bn.eval();
    const x = randomTensor(random, [2, 2, 2, 2], 'float64');
    const y = bn.forward(x);
    for (let i = 0; i < 16; i++) {
      const c = Math.floor(i / 4) % 2;
      const expected = ((x.data[i] - [1, 2][c]) / Math.sqrt([4, 9][c] + 1e-5)) * [2, 3][c] + [1, -1][c];
      assert.ok(Math.abs(y.data[i] - expected) < 1e-14);
    }
    assert.deepEqual(Array.from(bn.runningMean!), [1, 2]);
    assert.equal(bn.numBatchesTracked, 7);
    const untracked = new BatchNorm2d(2, { backend, dtype: 'float64', trackRunningStats: false }).eval();
    const yb = untracked.forward(x);
    const train = new BatchNorm2d(2, { backend, dtype: 'float64' }).forward(x);
    assert.deepEqual(Array.from(yb.data), Array.from(train.data));
    assert.equal(untracked.runningMean, null);
    assert.deepEqual(Object.keys(untracked.stateDict()), ['weight', 'bias']);
  });

  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: stays exact on x + 1e6`, { dtype }, () => {
      const random = new Random(6);
      const base = randomTensor(random, [4, 2, 4, 4], 'float64');
      const shifted = { data: (dtype === 'float32' ? new Float32Array(128) : new Float64Array(128)).map((_, i) => base.data[i] + 1e6), shape: base.shape };
      const bn = new BatchNorm2d(2, { backend, dtype });
      const y = bn.forward(shifted);
      // the oracle: float64 from the same (rounded) inputs
      const ref = new BatchNorm2d(2, { dtype: 'float64', backend: 'reference' }).forward({ data: Float64Array.from(shifted.data), shape: base.shape });
      assert.ok(maxAbsDiff(y.data, ref.data) < (dtype === 'float32' ? 1e-6 : 1e-9), `${dtype} ${maxAbsDiff(y.data, ref.data)}`);
      assert.ok(Math.abs(bn.runningMean![0] - 0.9 * 0 - 0.1 * mean(channel(shifted, 0))) < 1e-1);
    });
  }

  it('accumulates parameter gradients across backward calls until zeroGrad', f64, () => {
    const random = new Random(7);
    const bn = new BatchNorm3d(2, { backend, dtype: 'float64' });
    const x = randomTensor(random, [2, 2, 2, 2, 2], 'float64');
    const dy = randomTensor(random, [2, 2, 2, 2, 2], 'float64');
    bn.forward(x);
    bn.backward(dy);
    const once = Array.from(bn.weight!.grad);
    bn.backward(dy);
    assert.ok(maxAbsDiff(bn.weight!.grad, once.map((g) => 2 * g)) < 1e-14);
    bn.zeroGrad();
    assert.deepEqual(Array.from(bn.weight!.grad), [0, 0]);
  });

  it('channels-last gives the channels-first result transposed', f64, () => {
    const random = new Random(8);
    const x = randomTensor(random, [2, 3, 2, 2], 'float64');
    const first = new BatchNorm2d(3, { backend, dtype: 'float64' }).forward(x);
    const xl = new Float64Array(24);
    for (let a = 0; a < 2; a++) for (let c = 0; c < 3; c++) for (let s = 0; s < 4; s++) xl[(a * 4 + s) * 3 + c] = x.data[(a * 3 + c) * 4 + s];
    const last = new BatchNorm2d(3, { backend, dtype: 'float64', layout: 'channels-last' }).forward({ data: xl, shape: [2, 2, 2, 3] });
    for (let a = 0; a < 2; a++) for (let c = 0; c < 3; c++) for (let s = 0; s < 4; s++) {
      assert.ok(Math.abs(last.data[(a * 4 + s) * 3 + c] - first.data[(a * 3 + c) * 4 + s]) < 1e-15);
    }
  });

  it('InstanceNorm tracks the batch average of instance statistics and leaves num_batches_tracked at 0', f64, () => {
    const random = new Random(9);
    const inorm = new InstanceNorm1d(1, { backend, dtype: 'float64', trackRunningStats: true });
    const x = randomTensor(random, [2, 1, 5], 'float64', 3, 2);
    inorm.forward(x);
    const rows = [Array.from(x.data.slice(0, 5)), Array.from(x.data.slice(5))];
    assert.ok(Math.abs(inorm.runningMean![0] - 0.1 * mean(rows.map(mean))) < 1e-15);
    assert.ok(Math.abs(inorm.runningVar![0] - (0.9 + 0.1 * mean(rows.map((r) => (biasedVar(r) * 5) / 4)))) < 1e-14);
    assert.equal(inorm.numBatchesTracked, 0);
    // an unbatched (C, L) input is one sample
    const y = new InstanceNorm1d(1, { backend, dtype: 'float64' }).forward({ data: x.data.slice(0, 5), shape: [1, 5] });
    assert.ok(Math.abs(mean(Array.from(y.data))) < 1e-15);
  });
});
