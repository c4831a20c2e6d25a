// Folding BatchNorm into Linear (fixtures/fold.json = torch's fuse_linear_bn_eval), foldedAffine, fuseForInference.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { normalizedError } from '../src/conformance/compare.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import { foldBatchNorm, foldedAffine, fuseForInference } from '../src/nn/fold.ts';
import { Linear } from '../src/nn/linear.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { Sigmoid } from '../src/nn/sigmoid.ts';
import { Random, fixtureDir, maxAbsDiff, randomTensor } from './helpers.ts';

interface FoldCase {
  name: string;
  dtype: 'float32' | 'float64';
  linear: { in: number; out: number; weight: number[]; bias: number[] | null };
  batchnorm: { eps: number; weight: number[]; bias: number[]; running_mean: number[]; running_var: number[] };
  input: { shape: number[]; data: number[] };
  expect: { weight: number[]; bias: number[]; output: { data: number[] }; unfused_output: { data: number[] } };
}

const cases = (JSON.parse(readFileSync(`${fixtureDir}fold.json`, 'utf8')) as { cases: FoldCase[] }).cases;

function build(c: FoldCase): { linear: Linear; bn: BatchNorm1d } {
  const linear = new Linear(c.linear.in, c.linear.out, { dtype: c.dtype, bias: c.linear.bias !== null });
  linear.loadStateDict(c.linear.bias === null ? { weight: c.linear.weight } : { weight: c.linear.weight, bias: c.linear.bias });
  const { eps, weight, bias, running_mean, running_var } = c.batchnorm;
  const bn = new BatchNorm1d(c.linear.out, { dtype: c.dtype, eps });
  bn.loadStateDict({ weight, bias, running_mean, running_var, num_batches_tracked: 0 });
  bn.eval();
  return { linear, bn };
}

describe('folding (fold.json: torch.nn.utils.fusion.fuse_linear_bn_eval)', () => {
  for (const c of cases) {
    it(`${c.name} (${c.dtype}${c.linear.bias === null ? ', Linear without bias' : ''})`, () => {
      const floor = c.dtype === 'float32' ? 1e-5 : 1e-10;
      const { linear, bn } = build(c);
      const before = JSON.stringify([Array.from(linear.weight.data), Array.from(bn.runningMean!)]);
      const folded = foldBatchNorm(linear, bn);
      assert.ok(normalizedError(folded.weight.data, c.expect.weight) <= floor, 'weight');
      assert.ok(normalizedError(folded.bias!.data, c.expect.bias) <= floor, 'bias');
      const x = { data: c.dtype === 'float32' ? Float32Array.from(c.input.data) : Float64Array.from(c.input.data), shape: c.input.shape };
      assert.ok(normalizedError(folded.forward(x).data, c.expect.output.data) <= floor, 'output');
      assert.ok(normalizedError(bn.forward(linear.forward(x)).data, c.expect.unfused_output.data) <= floor, 'unfused output');
      assert.equal(JSON.stringify([Array.from(linear.weight.data), Array.from(bn.runningMean!)]), before, 'the inputs are unchanged');
    });
  }

  it('foldedAffine is eval mode as y = x*scale + shift', () => {
    const random = new Random(2);
    const bn = new BatchNorm2d(3, { dtype: 'float64' });
    for (let k = 0; k < 3; k++) bn.forward(randomTensor(random, [4, 3, 2, 2], 'float64', 2, 3));
    bn.weight!.data.set([0.5, -2, 1.5]);
    bn.eval();
    const x = randomTensor(random, [2, 3, 2, 2]);
    const y = bn.forward(x);
    const { scale, shift } = foldedAffine(bn);
    const byHand = x.data.map((v, i) => v * scale[Math.floor(i / 4) % 3] + shift[Math.floor(i / 4) % 3]);
    assert.ok(maxAbsDiff(y.data, byHand) < 1e-14);
    assert.throws(() => foldedAffine(new BatchNorm1d(2, { trackRunningStats: false })), /foldedAffine needs running statistics/);
    assert.throws(() => foldBatchNorm(new Linear(2, 3), new BatchNorm1d(4)), /BatchNorm1d has 4 features, the Linear before it 3 outputs/);
  });

  it('fuseForInference folds every Linear + BatchNorm1d pair; outputs unchanged within rounding', () => {
    const random = new Random(3);
    for (const dtype of ['float32', 'float64'] as const) {
      const model = new Sequential(new Linear(6, 5, { dtype, seed: 1 }), new BatchNorm1d(5, { dtype }), new Sigmoid(), new Linear(5, 4, { dtype, seed: 2 }), new BatchNorm1d(4, { dtype }), new Linear(4, 2, { dtype, seed: 3 }));
      for (let k = 0; k < 5; k++) model.forward(randomTensor(random, [8, 6], dtype, 1, 2));
      model.eval();
      const fused = fuseForInference(model);
      assert.deepEqual(fused.modules.map((m) => m.name), ['Linear', 'Sigmoid', 'Linear', 'Linear']);
      assert.equal(model.modules.length, 6);
      const x = randomTensor(random, [7, 6], dtype);
      const scale = Math.max(...Array.from(model.forward(x).data, Math.abs));
      assert.ok(maxAbsDiff(fused.forward(x).data, model.forward(x).data) / scale < (dtype === 'float32' ? 1e-6 : 1e-14), dtype);
    }
  });
});
