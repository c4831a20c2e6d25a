// Ghost BatchNorm and Batch Renormalization against BatchNorm run by hand on each ghost batch / with r, d by formula.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toChannelsLast } from '../src/core/transpose.ts';
import { NormkitError } from '../src/errors.ts';
import { gradcheck } from '../src/gradcheck.ts';
import type { BackendName } from '../src/kernels/contract.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import type { Tensor } from '../src/tensor.ts';
import { Random, maxAbsDiff, randomTensor, snapshot } from './helpers.ts';

const cpuBackends: readonly BackendName[] = ['reference', 'js', 'wasm'];

/** Rows [from, to) of a channels-first tensor as a new tensor (a copy: the oracle may copy). */
function rows(t: Tensor, from: number, to: number): Tensor {
  const per = t.data.length / t.shape[0];
  return { data: t.data.slice(from * per, to * per), shape: [to - from, ...t.shape.slice(1)] };
}

describe('Ghost BatchNorm (virtualBatchSize)', () => {
  for (const backend of cpuBackends) {
    for (const layout of ['channels-first', 'channels-last'] as const) {
      it(`${backend} ${layout}: equals one BatchNorm step per ghost batch (7 = 3 + 3 + 1 samples of 2x2), momentum and cumulative`, () => {
        for (const momentum of [0.1, null]) {
          const random = new Random(3);
          const x = randomTensor(random, [7, 3, 2, 2], 'float64', 2, 3);
          const dy = randomTensor(random, [7, 3, 2, 2], 'float64');
          const ghost = new BatchNorm2d(3, { dtype: 'float64', backend, layout, momentum, virtualBatchSize: 3 });
          const plain = new BatchNorm2d(3, { dtype: 'float64', backend: 'reference', momentum });
          for (const layer of [ghost, plain]) layer.loadStateDict({ weight: [1.5, -0.5, 2], bias: [0.1, 0.2, 0.3], running_mean: [0.5, 0, -1], running_var: [2, 1, 0.5], num_batches_tracked: 4 });
          const cl = (t: Tensor): Tensor => (layout === 'channels-last' ? toChannelsLast(t.data, t.shape) : t);
          const y = ghost.forward(cl(x));
          const dx = ghost.backward(cl(dy));
          const ys: number[] = [];
          const dxs: number[] = [];
          for (const [from, to] of [[0, 3], [3, 6], [6, 7]]) {
            ys.push(...plain.forward(rows(x, from, to)).data);
            dxs.push(...plain.backward(rows(dy, from, to)).data);
          }
          assert.ok(maxAbsDiff(y.data, cl({ data: Float64Array.from(ys), shape: x.shape }).data) < 1e-12);
          assert.ok(maxAbsDiff(dx.data, cl({ data: Float64Array.from(dxs), shape: x.shape }).data) < 1e-12);
          assert.ok(maxAbsDiff(ghost.weight!.grad, plain.weight!.grad) < 1e-12);
          assert.ok(maxAbsDiff(ghost.bias!.grad, plain.bias!.grad) < 1e-12);
          assert.ok(maxAbsDiff(ghost.runningMean!, plain.runningMean!) < 1e-14);
          assert.ok(maxAbsDiff(ghost.runningVar!, plain.runningVar!) < 1e-14);
          assert.equal(ghost.numBatchesTracked, 7);
          // eval is BatchNorm eval over the whole batch
          ghost.eval();
          plain.eval();
          assert.ok(maxAbsDiff(ghost.forward(cl(x)).data, cl(plain.forward(x)).data) < 1e-12);
        }
      });
    }
  }

  it('a virtual batch as large as the batch is BatchNorm', () => {
    const random = new Random(4);
    const x = randomTensor(random, [5, 4]);
    const ghost = new BatchNorm1d(4, { dtype: 'float64', virtualBatchSize: 8 });
    const plain = new BatchNorm1d(4, { dtype: 'float64' });
    assert.deepEqual(Array.from(ghost.forward(x).data), Array.from(plain.forward(x).data));
    assert.equal(snapshot(ghost), snapshot(plain));
  });

  it('a last ghost batch with one value per channel throws before anything changes', () => {
    const bn = new BatchNorm1d(3, { virtualBatchSize: 4 });
    const out = { data: new Float32Array(15).fill(7), shape: [5, 3] };
    const before = snapshot(bn);
    assert.throws(
      () => bn.forward(randomTensor(new Random(1), [5, 3], 'float32'), { out }),
      (e: unknown) => e instanceof NormkitError && e.code === 'single-value' && /Expected more than 1 value per channel when training, got input size \[1, 3\]/.test(e.message),
    );
    assert.equal(snapshot(bn), before);
    assert.ok(out.data.every((v) => v === 7));
    // (N, C, L) with L > 1: a ghost batch of one sample still has L values per channel
    new BatchNorm1d(3, { virtualBatchSize: 4 }).forward(randomTensor(new Random(1), [5, 3, 2], 'float32'));
  });

  it('rejects bad sizes, and can be changed between steps', () => {
    for (const v of [0, 1.5, -2, '4']) {
      // @ts-expect-error: a JavaScript caller's wrong type
      assert.throws(() => new BatchNorm1d(3, { virtualBatchSize: v }), /virtualBatchSize must be a positive integer or null/);
    }
    const bn = new BatchNorm1d(2, { virtualBatchSize: 2 });
    bn.virtualBatchSize = null;
    bn.forward(randomTensor(new Random(2), [4, 2], 'float32'));
    assert.equal(bn.numBatchesTracked, 1);
    bn.virtualBatchSize = 2;
    bn.forward(randomTensor(new Random(2), [4, 2], 'float32'));
    assert.equal(bn.numBatchesTracked, 3);
  });

  it('gradcheck: dx, dweight, dbias through uneven ghost batches, both layouts', () => {
    for (const layout of ['channels-first', 'channels-last'] as const) {
      const bn = new BatchNorm2d(2, { dtype: 'float64', virtualBatchSize: 2, layout });
      bn.weight!.data.set([1.3, -0.7]);
      const result = gradcheck(bn, randomTensor(new Random(6), layout === 'channels-first' ? [5, 2, 2, 1] : [5, 2, 1, 2], 'float64', 1, 2));
      assert.ok(result.ok, JSON.stringify(result.entries.map((e) => [e.input, e.worstRatio])));
    }
  });
});

/** r, d and y of Batch Renormalization for a (N, C) input, in float64, straight from Algorithm 1. */
function renormByHand(x: Float64Array, n: number, c: number, gamma: ArrayLike<number>, beta: ArrayLike<number>, rm: ArrayLike<number>, rv: ArrayLike<number>, rmax: number, dmax: number, eps: number) {
  const y = new Float64Array(x.length);
  for (let j = 0; j < c; j++) {
    let mu = 0;
    for (let i = 0; i < n; i++) mu += x[i * c + j] / n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[i * c + j] - mu) ** 2 / n;
    const sigmaB = Math.sqrt(v + eps);
    const sigma = Math.sqrt(rv[j] + eps);
    const r = Math.min(Math.max(sigmaB / sigma, 1 / rmax), rmax);
    const d = Math.min(Math.max((mu - rm[j]) / sigma, -dmax), dmax);
    for (let i = 0; i < n; i++) y[i * c + j] = gamma[j] * (((x[i * c + j] - mu) / sigmaB) * r + d) + beta[j];
  }
  return y;
}

describe('Batch Renormalization (renorm)', () => {
  for (const backend of cpuBackends) {
    it(`${backend}: y follows Algorithm 1, with rmax and dmax ramped between steps`, () => {
      const random = new Random(8);
      const bn = new BatchNorm1d(3, { dtype: 'float64', backend, renorm: { rmax: 1, dmax: 0 } });
      bn.loadStateDict({ weight: [2, 1, -1], bias: [0, 1, 2], running_mean: [1, -1, 0], running_var: [4, 0.25, 1], num_batches_tracked: 0 });
      for (const [rmax, dmax] of [[1, 0], [1.2, 0.3], [3, 5]]) {
        bn.renorm = { rmax, dmax };
        const x = randomTensor(random, [6, 3], 'float64', 0.5, 1.5);
        const expected = renormByHand(x.data as Float64Array, 6, 3, bn.weight!.data, bn.bias!.data, bn.runningMean!, bn.runningVar!, rmax, dmax, bn.eps);
        assert.ok(maxAbsDiff(bn.forward(x).data, expected) < 1e-12, `rmax ${rmax} dmax ${dmax}`);
      }
      assert.equal(bn.numBatchesTracked, 3);
    });
  }

  it('rmax 1, dmax 0 is BatchNorm: output, gradients and running statistics', () => {
    const random = new Random(9);
    const x = randomTensor(random, [4, 3, 2, 2], 'float64', 1, 2);
    const dy = randomTensor(random, [4, 3, 2, 2], 'float64');
    const renorm = new BatchNorm2d(3, { dtype: 'float64', renorm: { rmax: 1, dmax: 0 } });
    const plain = new BatchNorm2d(3, { dtype: 'float64' });
    for (const layer of [renorm, plain]) {
      layer.weight!.data.set([1, 2, 3]);
      layer.forward(x);
      layer.backward(dy);
    }
    assert.ok(maxAbsDiff(renorm.forward(x).data, plain.forward(x).data) < 1e-13);
    assert.ok(maxAbsDiff(renorm.backward(dy).data, plain.backward(dy).data) < 1e-13);
    assert.ok(maxAbsDiff(renorm.weight!.grad, plain.weight!.grad) < 1e-12);
    assert.ok(maxAbsDiff(renorm.runningVar!, plain.runningVar!) < 1e-15);
  });

  it('Ghost BatchNorm with renorm: each ghost batch renormalizes with the running statistics its predecessors left', () => {
    const random = new Random(10);
    const x = randomTensor(random, [6, 2], 'float64', 3, 2);
    const both = new BatchNorm1d(2, { dtype: 'float64', virtualBatchSize: 3, renorm: { rmax: 1.5, dmax: 0.5 } });
    const one = new BatchNorm1d(2, { dtype: 'float64', renorm: { rmax: 1.5, dmax: 0.5 } });
    const y = both.forward(x);
    const expected = [...one.forward(rows(x, 0, 3)).data, ...one.forward(rows(x, 3, 6)).data];
    assert.ok(maxAbsDiff(y.data, expected) < 1e-13);
    assert.equal(snapshot(both), snapshot(one));
  });

  it('rejects bad clips and renorm without running statistics', () => {
    for (const renorm of [{ rmax: 0.5, dmax: 0 }, { rmax: 2, dmax: -1 }, { rmax: Number.NaN, dmax: 1 }, { rmax: 2 }]) {
      // @ts-expect-error: a JavaScript caller's wrong shape
      assert.throws(() => new BatchNorm1d(3, { renorm }), /renorm must be \{ rmax: number >= 1, dmax: number >= 0 \} or null/);
    }
    assert.throws(() => new BatchNorm1d(3, { renorm: { rmax: 2, dmax: 1 }, trackRunningStats: false }), /renorm needs running statistics/);
    const bn = new BatchNorm1d(3, { renorm: { rmax: 2, dmax: 1 } });
    assert.throws(() => (bn.renorm = { rmax: 0, dmax: 1 }), NormkitError);
    assert.deepEqual(bn.renorm, { rmax: 2, dmax: 1 });
  });

  it('gradcheck with r and d clipped (constants, as the paper treats them), both layouts', () => {
    for (const layout of ['channels-first', 'channels-last'] as const) {
      // momentum 0 keeps the running statistics, so r and d stay clipped over gradcheck's many forwards
      const bn = new BatchNorm2d(2, { dtype: 'float64', momentum: 0, layout, renorm: { rmax: 1.5, dmax: 0.5 } });
      bn.loadStateDict({ weight: [1.3, -0.7], bias: [0.2, 0.1], running_mean: [50, -5], running_var: [100, 0.01], num_batches_tracked: 0 });
      const result = gradcheck(bn, randomTensor(new Random(7), [3, 2, 2, 2], 'float64'));
      assert.ok(result.ok, JSON.stringify(result.entries.map((e) => [e.input, e.worstRatio])));
    }
  });
});
