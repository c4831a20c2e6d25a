// State dicts: PyTorch's keys, strict loading, bit-exact round trips.
import assert from 'node:assert/strict';
import { NormkitError } from '../src/errors.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import { GroupNorm } from '../src/nn/groupnorm.ts';
import { InstanceNorm1d } from '../src/nn/instancenorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import { describeBackends } from './backends.ts';
import { Random, randomTensor, snapshot } from './helpers.ts';

describeBackends('stateDict / loadStateDict', ({ name: backend, it }) => {
  it("uses PyTorch's keys for every layer", () => {
    assert.deepEqual(Object.keys(new BatchNorm2d(3, { backend }).stateDict()), ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    assert.deepEqual(Object.keys(new BatchNorm2d(3, { backend, affine: false }).stateDict()), ['running_mean', 'running_var', 'num_batches_tracked']);
    assert.deepEqual(Object.keys(new LayerNorm([4, 5], { backend }).stateDict()), ['weight', 'bias']);
    assert.deepEqual(Object.keys(new GroupNorm(2, 4, { backend, affine: false }).stateDict()), []);
    assert.deepEqual(Object.keys(new InstanceNorm1d(2, { backend, affine: true, trackRunningStats: true }).stateDict()), [
      'weight',
      'bias',
      'running_mean',
      'running_var',
      'num_batches_tracked',
    ]);
  });

  for (const dtype of ['float32', 'float64'] as const) {
    it(`round-trips bit-exactly after training steps (${dtype}, awkward values included)`, { dtype }, () => {
      const random = new Random(1);
      const a = new BatchNorm2d(3, { dtype, backend });
      for (let i = 0; i < 3; i++) a.forward(randomTensor(random, [2, 3, 2, 2], dtype, 1e3, 1e-3));
      a.weight!.data.set([-0, 1e-45, 3.4e38]);
      const b = new BatchNorm2d(3, { dtype, backend });
      b.loadStateDict(a.stateDict());
      assert.equal(snapshot(b), snapshot(a));
      const sa = a.stateDict();
      const sb = b.stateDict();
      for (const key of Object.keys(sa)) {
        const va = sa[key];
        const vb = sb[key];
        if (typeof va === 'number' || typeof vb === 'number') assert.equal(va, vb);
        else assert.ok(va.every((v, i) => Object.is(v, vb[i])), key);
      }
      // the dict holds copies: changing it does not reach the layer
      const copy = a.stateDict();
      (copy.running_mean as Float32Array)[0] = 42;
      assert.notEqual(a.runningMean![0], 42);
    });
  }

  it('is strict by default: missing, unexpected and wrong-length entries are errors, and nothing is written', () => {
    const bn = new BatchNorm2d(2, { backend });
    const good = { weight: [1, 2], bias: [3, 4], running_mean: [5, 6], running_var: [7, 8], num_batches_tracked: 9 };
    const before = snapshot(bn);
    const cases: [Record<string, number[] | number>, RegExp][] = [
      [{ ...good, running_var: -1 }, /Missing key\(s\) in state_dict: "running_var"/],
      [{ ...good, extra: [1] }, /Unexpected key\(s\) in state_dict: "extra"/],
      [{ ...good, bias: [1, 2, 3] }, /size mismatch for bias: copying a param with shape \[3\] from checkpoint, the shape in current model is \[2\]/],
      [{ ...good, num_batches_tracked: 1.5 }, /num_batches_tracked must be a non-negative integer, got 1.5/],
    ];
    for (const [state, message] of cases) {
      const cleaned = Object.fromEntries(Object.entries(state).filter(([k, v]) => !(k === "running_var" && v === -1)));
      assert.throws(() => { bn.loadStateDict(cleaned); }, (e: unknown) => e instanceof NormkitError && e.code === 'state-dict' && message.test(e.message));
      assert.equal(snapshot(bn), before);
    }
    bn.loadStateDict(good);
    assert.deepEqual(Array.from(bn.runningVar!), [7, 8]);
    assert.equal(bn.numBatchesTracked, 9);
  });

  it('non-strict loading takes the keys it knows and keeps the rest', () => {
    const bn = new BatchNorm2d(2, { backend });
    bn.loadStateDict({ weight: [5, 6], other: [1] }, { strict: false });
    assert.deepEqual(Array.from(bn.weight!.data), [5, 6]);
    assert.deepEqual(Array.from(bn.runningVar!), [1, 1]);
    assert.throws(() => { bn.loadStateDict({ weight: [1] }, { strict: false }); }, /size mismatch for weight/);
  });
});
