// The pieces of the MNIST demo: Linear, Sigmoid, softmax cross-entropy, Sequential, SGD — gradchecked.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NormkitError } from '../src/errors.ts';
import { gradcheck } from '../src/gradcheck.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import { Linear } from '../src/nn/linear.ts';
import { SoftmaxCrossEntropy } from '../src/nn/loss.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { SGD } from '../src/nn/sgd.ts';
import { Sigmoid } from '../src/nn/sigmoid.ts';
import { describeBackends } from './backends.ts';
import { Random, randomTensor, snapshot } from './helpers.ts';

describe('nn building blocks', () => {
  it('Linear: gradcheck for x, weight and bias; PyTorch init bound; shape errors', () => {
    const linear = new Linear(5, 3, { dtype: 'float64', seed: 2 });
    for (const w of linear.weight.data) assert.ok(Math.abs(w) <= 1 / Math.sqrt(5));
    const result = gradcheck(linear, randomTensor(new Random(1), [4, 5]));
    assert.ok(result.ok, JSON.stringify(result.entries.map(({ analytical, numerical, ...e }) => e)));
    assert.deepEqual(result.entries.map((e) => e.input), ['x', 'weight', 'bias']);
    assert.throws(() => linear.forward(randomTensor(new Random(1), [4, 6])), (e: unknown) => e instanceof NormkitError && /expected input of shape \[N, 5\], got \[4, 6\]/.test(e.message));
    assert.throws(() => new Linear(5, 3).backward(randomTensor(new Random(1), [4, 3], 'float32')), /backward called before forward/);
  });

  it('softmax cross-entropy: value and gradient against central differences', () => {
    const random = new Random(4);
    const logits = randomTensor(random, [3, 5], 'float64', 0, 3);
    const labels = [4, 0, 2];
    const ce = new SoftmaxCrossEntropy();
    const loss = ce.forward(logits, labels);
    // the value by definition: mean of -log softmax at the label
    const expected = [0, 1, 2].reduce((sum, r) => {
      const row = Array.from(logits.data.slice(r * 5, r * 5 + 5));
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      return sum + (lse - row[labels[r]]) / 3;
    }, 0);
    assert.ok(Math.abs(loss - expected) < 1e-14);
    const grad = ce.backward();
    for (let i = 0; i < 15; i++) {
      const keep = logits.data[i];
      logits.data[i] = keep + 1e-6;
      const plus = new SoftmaxCrossEntropy().forward(logits, labels);
      logits.data[i] = keep - 1e-6;
      const minus = new SoftmaxCrossEntropy().forward(logits, labels);
      logits.data[i] = keep;
      assert.ok(Math.abs(grad.data[i] - (plus - minus) / 2e-6) < 1e-8);
    }
    assert.throws(() => ce.forward(logits, [5, 0, 0]), /label 5 outside \[0, 5\)/);
  });

  it('SGD steps against the gradient and lowers the loss', () => {
    const random = new Random(5);
    const net = new Sequential(new Linear(4, 8, { seed: 1 }), new Sigmoid(), new Linear(8, 3, { seed: 2 }));
    const sgd = new SGD(net.parameters(), { lr: 0.5 });
    const x = randomTensor(random, [16, 4], 'float32');
    const labels = Int32Array.from({ length: 16 }, (_, i) => i % 3);
    const ce = new SoftmaxCrossEntropy();
    const losses: number[] = [];
    for (let step = 0; step < 300; step++) {
      sgd.zeroGrad();
      losses.push(ce.forward(net.forward(x), labels));
      net.backward(ce.backward());
      sgd.step();
    }
    assert.ok(losses[299] < losses[0] * 0.5, `${losses[0]} -> ${losses[299]}`);
    assert.throws(() => new SGD([], { lr: 0 }), /lr must be a finite number > 0/);
  });
});

describeBackends('nn building blocks around a norm layer', ({ name: backend, it }) => {
  it('Sigmoid and a Sequential with BatchNorm1d pass gradcheck end to end', { dtype: 'float64', why: 'gradcheck differences in float64' }, () => {
    const net = new Sequential(new Linear(6, 4, { dtype: 'float64', seed: 1 }), new BatchNorm1d(4, { backend, dtype: 'float64' }), new Sigmoid(), new Linear(4, 3, { dtype: 'float64', seed: 2 }));
    const result = gradcheck(net, randomTensor(new Random(3), [5, 6]));
    assert.ok(result.ok, JSON.stringify(result.entries.map(({ analytical, numerical, ...e }) => e)));
    assert.equal(result.entries.length, 1 + 6);
    assert.deepEqual(Object.keys(net.stateDict()), ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked', '3.weight', '3.bias']);
  });

  it('Sequential loads its state whole or not at all', () => {
    const make = () => new Sequential(new Linear(3, 2, { seed: 1 }), new BatchNorm1d(2, { backend }));
    const a = make();
    const b = new Sequential(new Linear(3, 2, { seed: 9 }), new BatchNorm1d(2, { backend }));
    const before = snapshot(b);
    const state = { ...a.stateDict(), '1.running_var': [1, 2, 3] };
    assert.throws(() => {
      b.loadStateDict(state);
    }, /size mismatch for running_var/);
    assert.equal(snapshot(b), before);
    b.loadStateDict(a.stateDict());
    assert.equal(snapshot(b), snapshot(a));
  });
});
