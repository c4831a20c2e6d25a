// Masked statistics (forward(x, { mask })): against BatchNorm on the valid positions gathered into a dense batch
// (the float64 truth of the masked statistics), a float64 gradcheck on random dy, and every bad mask.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toChannelsFirst, toChannelsLast } from '../src/core/transpose.ts';
import { NormkitError } from '../src/errors.ts';
import { gradcheck } from '../src/gradcheck.ts';
import type { BackendName } from '../src/kernels/contract.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import type { Mask } from '../src/nn/masked.ts';
import type { Module } from '../src/nn/module.ts';
import type { DType, Tensor } from '../src/tensor.ts';
import { Random, maxAbsDiff, randomTensor, snapshot } from './helpers.ts';

const state = { weight: [1.5, -0.5, 2], bias: [0.1, 0.2, 0.3], running_mean: [0.5, 0, -1], running_var: [2, 1, 0.5], num_batches_tracked: 4 };

/** A padded (N, C, L) batch: sequence n has lengths[n] valid steps; the mask is (N, L) booleans. */
function padded(random: Random, lengths: readonly number[], c: number, l: number, dtype: DType): { x: Tensor; dy: Tensor; mask: boolean[] } {
  const x = randomTensor(random, [lengths.length, c, l], dtype, 1, 2);
  const dy = randomTensor(random, [lengths.length, c, l], dtype);
  const mask = lengths.flatMap((len) => Array.from({ length: l }, (_, t) => t < len));
  // padding holds large junk: it must not leak into anything
  lengths.forEach((len, n) => {
    for (let ch = 0; ch < c; ch++) for (let t = len; t < l; t++) x.data[(n * c + ch) * l + t] = 1e3 * (t + 1);
  });
  return { x, dy, mask };
}

/** The valid positions of a channels-first (N, C, L) tensor as a dense (M, C) batch. */
function gather(t: Tensor, mask: readonly boolean[]): Tensor {
  const [n, c, l] = t.shape;
  const rows: number[] = [];
  for (let a = 0; a < n; a++) for (let s = 0; s < l; s++) if (mask[a * l + s]) for (let ch = 0; ch < c; ch++) rows.push(t.data[(a * c + ch) * l + s]);
  return { data: Float64Array.from(rows), shape: [rows.length / c, c] };
}

function scatterCheck(masked: ArrayLike<number>, dense: ArrayLike<number>, shape: readonly number[], mask: readonly boolean[], what: string, tol: number): void {
  const [n, c, l] = shape;
  let k = 0;
  for (let a = 0; a < n; a++) {
    for (let s = 0; s < l; s++) {
      for (let ch = 0; ch < c; ch++) {
        const v = masked[(a * c + ch) * l + s];
        if (mask[a * l + s]) assert.ok(Math.abs(v - dense[k++]) <= tol, `${what} at ${a},${ch},${s}: ${v} vs ${dense[k - 1]}`);
        else assert.equal(v, 0, `${what} at padded ${a},${ch},${s} is ${v}`);
      }
    }
  }
}

describe('BatchNorm1d forward(x, { mask }): masked statistics', () => {
  for (const backend of ['js', 'wasm', 'reference'] as const satisfies readonly BackendName[]) {
    for (const dtype of ['float64', 'float32'] as const) {
      for (const layout of ['channels-first', 'channels-last'] as const) {
        it(`${backend} ${dtype} ${layout}: (N, C, L) equals BatchNorm over the valid positions, padding zeroed, over three steps`, () => {
          const random = new Random(7);
          const bn = new BatchNorm1d(3, { dtype, backend, layout });
          const dense = new BatchNorm1d(3, { dtype: 'float64', backend: 'reference' });
          bn.loadStateDict(state);
          dense.loadStateDict(state);
          const tol = dtype === 'float64' ? 1e-12 : 2e-5;
          for (const [step, lengths] of [[0, [5, 2, 4, 1]], [1, [3, 5, 5, 2]], [2, [1, 1, 5, 2]]] as const) {
            const { x, dy, mask } = padded(random, lengths, 3, 5, dtype);
            const cl = (t: Tensor): Tensor => (layout === 'channels-last' ? toChannelsLast(t.data, t.shape) : t);
            const back = (t: Tensor): Tensor => (layout === 'channels-last' ? toChannelsFirst(t.data, t.shape) : t);
            bn.zeroGrad();
            dense.zeroGrad();
            const maskTensor: Mask = { data: mask.map((v) => (step === 1 ? Number(v) : v)), shape: [4, 5] };
            const y = bn.forward(cl(x), { mask: maskTensor });
            const dx = bn.backward(cl(dy));
            const yDense = dense.forward(gather(x, mask));
            const dxDense = dense.backward(gather(dy, mask));
            scatterCheck(back(y).data, yDense.data, x.shape, mask, 'y', tol * 10);
            scatterCheck(back(dx).data, dxDense.data, x.shape, mask, 'dx', tol * 10);
            assert.ok(maxAbsDiff(bn.weight!.grad, dense.weight!.grad) < tol * 100, 'dweight');
            assert.ok(maxAbsDiff(bn.bias!.grad, dense.bias!.grad) < tol * 100, 'dbias');
            assert.ok(maxAbsDiff(bn.runningMean!, dense.runningMean!) < tol, 'running_mean');
            assert.ok(maxAbsDiff(bn.runningVar!, dense.runningVar!) < tol, 'running_var (unbiased with the valid count)');
            assert.equal(bn.numBatchesTracked, dense.numBatchesTracked);
          }
          // eval: the running statistics at the valid positions, padding zeroed
          bn.eval();
          dense.eval();
          const { x, mask } = padded(random, [2, 5, 3, 4], 3, 5, dtype);
          const cl = layout === 'channels-last' ? toChannelsLast(x.data, x.shape) : x;
          const y = bn.forward(cl, { mask });
          const yBack = layout === 'channels-last' ? toChannelsFirst(y.data, y.shape) : y;
          scatterCheck(yBack.data, dense.forward(gather(x, mask)).data, x.shape, mask, 'eval y', tol * 10);
        });
      }
    }
  }

  it('(N, C) with an (N) mask equals BatchNorm over the valid rows', () => {
    const random = new Random(8);
    const x = randomTensor(random, [6, 3], 'float64', 2, 3);
    const mask = [true, false, true, true, false, true];
    const bn = new BatchNorm1d(3, { dtype: 'float64' });
    const dense = new BatchNorm1d(3, { dtype: 'float64' });
    const y = bn.forward(x, { mask: Uint8Array.from(mask.map(Number)) });
    const rows = mask.flatMap((m, n) => (m ? Array.from(x.data.slice(3 * n, 3 * n + 3)) : []));
    const yDense = dense.forward({ data: Float64Array.from(rows), shape: [4, 3] });
    scatterCheck(y.data, yDense.data, [6, 3, 1], mask, 'y', 1e-12);
    assert.ok(maxAbsDiff(bn.runningVar!, dense.runningVar!) < 1e-15);
  });

  it('an all-valid mask is BatchNorm', () => {
    const x = randomTensor(new Random(9), [4, 3, 5], 'float64', 1, 2);
    const masked = new BatchNorm1d(3, { dtype: 'float64' });
    const plain = new BatchNorm1d(3, { dtype: 'float64' });
    assert.ok(maxAbsDiff(masked.forward(x, { mask: new Array<boolean>(20).fill(true) }).data, plain.forward(x).data) < 1e-13);
    assert.ok(maxAbsDiff(masked.runningVar!, plain.runningVar!) < 1e-15);
  });

  for (const mode of ['train', 'eval'] as const) {
    for (const layout of ['channels-first', 'channels-last'] as const) {
      it(`gradcheck (float64 central differences, random dy) ${mode} ${layout}: dx exact, padded dx 0, padding adds nothing to dweight or dbias`, () => {
        const random = new Random(10);
        const { x, mask } = padded(random, [4, 1, 3], 2, 4, 'float64');
        const input = layout === 'channels-last' ? toChannelsLast(x.data, x.shape) : x;
        const bn = new BatchNorm1d(2, { dtype: 'float64', layout });
        bn.loadStateDict({ weight: [1.3, -0.7], bias: [0.2, -0.1], running_mean: [0.3, -0.2], running_var: [1.5, 0.7], num_batches_tracked: 0 });
        bn.train(mode === 'train');
        const masked: Module = {
          name: 'masked BatchNorm1d',
          forward: (t) => bn.forward(t, { mask }),
          backward: (dy) => bn.backward(dy),
          parameters: () => bn.parameters(),
          zeroGrad: () => {
            bn.zeroGrad();
          },
          stateDict: () => bn.stateDict(),
          loadStateDict: (s) => {
            bn.loadStateDict(s);
          },
        };
        const result = gradcheck(masked, input, { seed: 3 });
        for (const entry of result.entries) assert.ok(entry.ok, `${entry.input}: worst ratio ${entry.worstRatio}`);
        const dx = result.entries[0];
        assert.ok(dx.analytical.some((v) => v !== 0));
        // padded positions: exactly zero, analytically and numerically
        const positions = layout === 'channels-last' ? (i: number) => Math.floor(i / 2) : (i: number) => Math.floor(i / 8) * 4 + (i % 4);
        dx.analytical.forEach((v, i) => {
          if (!mask[positions(i)]) assert.equal(v, 0);
        });
        dx.numerical.forEach((v, i) => {
          if (!mask[positions(i)]) assert.ok(Math.abs(v) < 1e-9);
        });
      });
    }
  }

  it('rejects every bad mask with a clear text, changing nothing', () => {
    const bn = new BatchNorm1d(3);
    bn.forward(randomTensor(new Random(1), [4, 3, 5], 'float32'));
    const before = snapshot(bn);
    const x = randomTensor(new Random(2), [4, 3, 5], 'float32');
    const cases: [unknown, string, RegExp][] = [
      [{ data: new Array<boolean>(20).fill(true), shape: [5, 4] }, 'mask', /mask has shape \[5, 4\] \(input of size \[4, 3, 5\] takes a mask of shape \[4, 5\]/],
      [new Array<boolean>(19).fill(true), 'mask', /mask has 19 values/],
      [new Array<number>(20).fill(2), 'mask', /values must be booleans or 0\/1, got 2 at index 0/],
      [[...new Array<number>(19).fill(1), 0.5], 'mask', /got 0.5 at index 19/],
      [new Array<string>(20).fill('true'), 'mask', /values must be booleans or 0\/1/],
      ['all', 'mask', /must be \{ data, shape \} or an array of booleans or 0\/1/],
      [new Array<boolean>(20).fill(false), 'mask', /no valid position/],
      [[true, ...new Array<boolean>(19).fill(false)], 'single-value', /Expected more than 1 value per channel when training, got input size \[4, 3, 5\] with 1 valid position/],
    ];
    for (const [mask, code, message] of cases) {
      assert.throws(() => bn.forward(x, { mask: mask as Mask }), (e: unknown) => e instanceof NormkitError && e.code === code && message.test(e.message), String(message));
      assert.equal(snapshot(bn), before);
    }
    const ghost = new BatchNorm1d(3, { virtualBatchSize: 2 });
    assert.throws(() => ghost.forward(x, { mask: new Array<boolean>(20).fill(true) }), /a mask does not combine with virtualBatchSize or renorm/);
    const ln = new LayerNorm([5]);
    assert.throws(() => ln.forward(x, { mask: new Array<boolean>(20).fill(true) } as never), /unexpected forward option 'mask'; forward takes out/);
  });
});
