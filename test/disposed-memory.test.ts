// One rule for memory a tensor no longer owns (issue 27): a disposed wasm tensor, or a tensor whose
// ArrayBuffer was detached, is refused with the 'disposed' NormkitError as input, out, grad_output and
// as the input saved for backward, on every backend and every layer, and nothing the caller owns changes.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { NormkitError } from '../src/errors.ts';
import { wasmAvailable, wasmTensor } from '../src/kernels/wasm/backend.ts';
import type { BackendName } from '../src/kernels/contract.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import { FrozenBatchNorm2d } from '../src/nn/frozen.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import { Linear } from '../src/nn/linear.ts';
import type { Tensor } from '../src/tensor.ts';
import { tensor } from '../src/tensor.ts';
import { useWebGpu } from './webgpu-setup.ts';

function throwsDisposed(action: () => unknown, what: RegExp): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof NormkitError, `not a NormkitError: ${String(error)}`);
    assert.equal(error.code, 'disposed', error.message);
    assert.match(error.message, what);
    return true;
  });
}

/** A tensor of `values` whose ArrayBuffer is then detached (transferred away). */
function detached(values: number[], shape: number[]): Tensor {
  const data = Float32Array.from(values);
  structuredClone(data.buffer, { transfer: [data.buffer] });
  assert.equal(data.length, 0);
  return { data, shape };
}

const values = [1, 2, 3, 4, 5, 6, 7, 9];

describe('disposed and detached memory', () => {
  let webgpu = false;
  before(async () => {
    webgpu = (await useWebGpu()).ok;
  });
  const available = (backend: BackendName): boolean => (backend === 'webgpu' ? webgpu : backend === 'wasm' ? wasmAvailable() : true);

  it('repro: forward into a disposed out does not overwrite the live tensor that took its block', () => {
    const out = wasmTensor('float32', [4, 2]);
    out.dispose();
    const victim = tensor([7, 7, 7, 7, 7, 7, 7, 7], [4, 2]);
    throwsDisposed(() => new BatchNorm1d(2, { backend: 'js' }).forward(tensor(values, [4, 2]), { out }), /BatchNorm1d: out: the tensor was disposed/);
    assert.deepEqual(Array.from(victim.data), [7, 7, 7, 7, 7, 7, 7, 7]);
  });

  it('repro: a disposed input is refused, not read as the tensor that now owns its memory', () => {
    const x = tensor(values, [4, 2]);
    x.dispose();
    tensor([30, 1, 20, 2, 10, 3, 0, 4], [4, 2]);
    const bn = new BatchNorm1d(2, { backend: 'js' });
    throwsDisposed(() => bn.forward(x), /BatchNorm1d: input: the tensor was disposed/);
    assert.deepEqual(Array.from(bn.runningMean ?? []), [0, 0]);
  });

  for (const backend of ['js', 'reference', 'wasm', 'webgpu'] as const) {
    it(`BatchNorm1d on ${backend}: input, out, grad_output and the saved input, disposed or detached`, (t) => {
      if (!available(backend)) {
        t.skip(`${backend} is not available here`);
        return;
      }
      const make = () => new BatchNorm1d(2, { backend });
      const disposedTensor = () => {
        const d = wasmTensor('float32', [4, 2]);
        d.data.set(values);
        d.dispose();
        return d;
      };
      throwsDisposed(() => make().forward(disposedTensor()), /input: the tensor was disposed/);
      throwsDisposed(() => make().forward(detached(values, [4, 2])), /input: its ArrayBuffer was detached/);
      throwsDisposed(() => make().forward(tensor(values, [4, 2]), { out: disposedTensor() }), /out: the tensor was disposed/);
      throwsDisposed(() => make().forward(tensor(values, [4, 2]), { out: detached(values, [4, 2]) }), /out: its ArrayBuffer was detached/);
      const bn = make();
      bn.forward(tensor(values, [4, 2]));
      throwsDisposed(() => bn.backward(disposedTensor()), /grad_output: the tensor was disposed/);
      throwsDisposed(() => bn.backward(detached(values, [4, 2])), /grad_output: its ArrayBuffer was detached/);
      // the saved input: disposed, or detached, between forward and backward (dx was NaN or 0, with no error)
      const x = tensor(values, [4, 2]);
      bn.forward(x);
      x.dispose();
      const gradsBefore = Array.from(bn.weight?.grad ?? []);
      throwsDisposed(() => bn.backward(tensor(values, [4, 2])), /the input saved by forward: the tensor was disposed/);
      const plain = { data: Float32Array.from(values), shape: [4, 2] };
      bn.forward(plain);
      structuredClone(plain.data.buffer, { transfer: [plain.data.buffer] });
      throwsDisposed(() => bn.backward(tensor(values, [4, 2])), /the input saved by forward: its ArrayBuffer was detached/);
      assert.deepEqual(Array.from(bn.weight?.grad ?? []), gradsBefore, 'gradients changed');
    });
  }

  it('LayerNorm: the same rule (a layer with no running statistics)', () => {
    const ln = new LayerNorm([2], { backend: 'js' });
    throwsDisposed(() => ln.forward(detached(values, [4, 2])), /LayerNorm: input: its ArrayBuffer was detached/);
  });

  it('Linear: input, grad_output and the saved input', () => {
    const linear = new Linear(2, 3);
    throwsDisposed(() => linear.forward(detached(values, [4, 2])), /Linear: input: its ArrayBuffer was detached/);
    const x = tensor(values, [4, 2]);
    x.dispose();
    throwsDisposed(() => linear.forward(x), /Linear: input: the tensor was disposed/);
    const saved = { data: Float32Array.from(values), shape: [4, 2] };
    linear.forward(saved);
    throwsDisposed(() => linear.backward(detached(new Array<number>(12).fill(1), [4, 3])), /Linear: grad_output: its ArrayBuffer was detached/);
    structuredClone(saved.data.buffer, { transfer: [saved.data.buffer] });
    const before = Array.from(linear.weight.grad);
    throwsDisposed(() => linear.backward({ data: new Float32Array(12).fill(1), shape: [4, 3] }), /Linear: the input saved by forward: its ArrayBuffer was detached/);
    assert.deepEqual(Array.from(linear.weight.grad), before);
  });

  it('FrozenBatchNorm2d: input, grad_output and the saved input', () => {
    const frozen = new FrozenBatchNorm2d(2, { backend: 'js' });
    const shape = [1, 2, 2, 2];
    throwsDisposed(() => frozen.forward(detached(values, shape)), /FrozenBatchNorm2d: input: its ArrayBuffer was detached/);
    const x = tensor(values, shape);
    frozen.forward(x);
    throwsDisposed(() => frozen.backward(detached(values, shape)), /FrozenBatchNorm2d: grad_output: its ArrayBuffer was detached/);
    x.dispose();
    throwsDisposed(() => frozen.backward(tensor(values, shape)), /FrozenBatchNorm2d: the input saved by forward: the tensor was disposed/);
  });

  it('a plain tensor stays usable after dispose() (it returns no memory), an empty detached one is still refused', () => {
    const plain = { data: Float32Array.from(values), shape: [1, 2, 2, 2] };
    const bn = new BatchNorm2d(2, { backend: 'js' });
    const y = bn.forward(plain);
    y.dispose();
    assert.equal(bn.forward(y).data.length, 8);
    throwsDisposed(() => bn.forward(detached([], [0, 2, 2, 2])), /its ArrayBuffer was detached/);
  });
});
