// `out` aliasing an input through another view of the same memory (issue 27): a second SharedArrayBuffer
// object over the same memory (a structured clone), or a view made after wasm memory grew, is refused
// like a view of the same buffer, and the input is not overwritten.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NormkitError } from '../src/errors.ts';
import { wasmShared, wasmTensor } from '../src/kernels/wasm/backend.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';

function throwsAlias(action: () => unknown): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof NormkitError, `not a NormkitError: ${String(error)}`);
    assert.equal(error.code, 'alias', error.message);
    assert.match(error.message, /out must not share memory with the input \(overlapping views of one buffer\)/);
    return true;
  });
}

const values = [1, 2, 3, 4, 5, 6, 7, 9];

describe('aliasing through any view of the same memory', () => {
  it('a structured clone of a SharedArrayBuffer is the same memory', () => {
    const sab = new SharedArrayBuffer(64);
    const clone = structuredClone(sab);
    assert.notEqual(clone, sab);
    const x = { data: new Float32Array(sab, 0, 8), shape: [4, 2] };
    x.data.set(values);
    const out = { data: new Float32Array(clone, 16, 8), shape: [4, 2] };
    throwsAlias(() => new BatchNorm1d(2, { backend: 'js' }).forward(x, { out }));
    assert.deepEqual(Array.from(x.data), values, 'the input changed');
    // another SharedArrayBuffer of the same size is not the same memory
    const other = { data: new Float32Array(new SharedArrayBuffer(64), 16, 8), shape: [4, 2] };
    new BatchNorm1d(2, { backend: 'js' }).forward(x, { out: other });
    assert.deepEqual(Array.from(x.data), values);
  });

  it('a view made after wasm memory grew', () => {
    const x = wasmTensor('float32', [4, 2]);
    x.data.set(values);
    const { memory } = wasmShared();
    const pagesBefore = memory.buffer.byteLength;
    // a block larger than the free memory makes it grow
    const big = wasmTensor('float32', [pagesBefore / 4 + 1]);
    const grown = memory.buffer;
    assert.notEqual(grown, x.data.buffer, 'the memory did not grow');
    const out = { data: new Float32Array(grown, x.data.byteOffset, 8), shape: [4, 2] };
    throwsAlias(() => new BatchNorm1d(2, { backend: 'js' }).forward(x, { out }));
    assert.deepEqual(Array.from(x.data), values, 'the input changed');
    big.dispose();
    x.dispose();
  });
});
