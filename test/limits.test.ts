// Limits before allocation (issue 27): every size a caller can ask for is checked in bytes before
// anything is allocated, and refused with a 'size' NormkitError naming the limit (these all went past
// 4 GiB of memory, or aborted, before).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_ARRAY_BYTES, MAX_WASM_THREADS } from '../src/core/limits.ts';
import { NormkitError } from '../src/errors.ts';
import { wasmTensor } from '../src/kernels/wasm/backend.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import { FrozenBatchNorm2d } from '../src/nn/frozen.ts';
import { GroupNorm } from '../src/nn/groupnorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import { Linear } from '../src/nn/linear.ts';
import { startWasmThreads } from '../src/node/wasm-threads.ts';
import { tensor } from '../src/tensor.ts';

function throwsSize(action: () => unknown, message: RegExp): void {
  const before = process.memoryUsage().rss;
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof NormkitError, `not a NormkitError: ${String(error)}`);
    assert.equal(error.code, 'size', error.message);
    assert.match(error.message, message);
    return true;
  });
  // refused before allocating: no GiB taken on the way
  assert.ok(process.memoryUsage().rss - before < 2 ** 28, 'memory grew by more than 256 MiB before the error');
}

describe('limits before allocation', () => {
  it('the limits are stated once: 2 GiB per array and per layer, 64 wasm threads', () => {
    assert.equal(MAX_ARRAY_BYTES, 2 ** 31);
    assert.equal(MAX_WASM_THREADS, 64);
  });

  it('layers whose parameters and buffers would pass 2 GiB', () => {
    throwsSize(() => new BatchNorm1d(2 ** 32 - 1), /BatchNorm1d: .*one array may hold at most 2\.0 GiB/);
    throwsSize(() => new BatchNorm2d(2 ** 31, { dtype: 'float64' }), /BatchNorm2d: 2147483648 float64 values need 16\.0 GiB/);
    throwsSize(() => new LayerNorm([2 ** 31]), /LayerNorm: .*at most 2\.0 GiB/);
    throwsSize(() => new GroupNorm(1, 2 ** 32 - 1), /GroupNorm: .*at most 2\.0 GiB/);
    // each array fits, all of them together do not
    throwsSize(() => new BatchNorm1d(2 ** 27), /BatchNorm1d: its parameters, gradients and buffers need 4\.0 GiB .*a layer may hold at most 2\.0 GiB/);
    throwsSize(() => new Linear(65536, 65536), /Linear: 4294967296 float32 values need 16\.0 GiB/);
    throwsSize(() => new FrozenBatchNorm2d(2 ** 28, { backend: 'js' }), /FrozenBatchNorm2d: .*need 4\.0 GiB/);
  });

  it('tensors past 2 GiB: tensor(), wasmTensor', () => {
    // a sparse stand-in for a caller's 8 GiB array: its length is all tensor() reads before refusing
    const huge = { length: 2 ** 31 };
    throwsSize(() => tensor(huge, [2 ** 31]), /tensor: 2147483648 float32 values need 8\.0 GiB; one array may hold at most 2\.0 GiB/);
    throwsSize(() => wasmTensor('float64', [2 ** 28 + 1]), /wasmTensor: .*at most 2\.0 GiB/);
  });

  it('startWasmThreads past the limit, before any worker starts', async () => {
    for (const threads of [300000, 1e9]) {
      await assert.rejects(startWasmThreads(threads), (error: unknown) => {
        assert.ok(error instanceof NormkitError, `not a NormkitError: ${String(error)}`);
        assert.equal(error.code, 'size');
        assert.match(error.message, new RegExp(`startWasmThreads: threads must be at most 64, got ${threads}`));
        return true;
      });
    }
  });
});
