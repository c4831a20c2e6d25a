// Wasm memory: tensors resident by default (tensor(), layer outputs), their release (dispose, Symbol.dispose,
// a budget when nothing is disposed), and the issue-15 repros: lying lengths, a corrupted allocator, stale
// handles, leaks, a failed huge call that must not grow the memory.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normView } from '../src/core/layout.ts';
import { NormkitError } from '../src/errors.ts';
import { backends } from '../src/kernels/index.ts';
import { Arena } from '../src/kernels/wasm/arena.ts';
import { freeWasmTensor, setResidentBudget, wasmMemory, wasmTensor } from '../src/kernels/wasm/backend.ts';
import { DEFAULT_RESIDENT_BUDGET } from '../src/kernels/wasm/resident.ts';
import { Staging } from '../src/kernels/wasm/staging.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import type { Tensor } from '../src/tensor.ts';
import { tensor } from '../src/tensor.ts';
import { Random, maxAbsDiff } from './helpers.ts';

function isCode(code: string): (e: unknown) => boolean {
  return (e) => e instanceof NormkitError && e.code === code;
}

/** Whether the array's bytes lie in the wasm memory's buffer (a wasmTensor, or a default-resident tensor). */
function inWasm(t: Tensor): boolean {
  return typeof SharedArrayBuffer === 'function' && t.data.buffer instanceof SharedArrayBuffer;
}

function overlaps(a: Tensor, b: Tensor): boolean {
  return a.data.byteOffset < b.data.byteOffset + b.data.byteLength && b.data.byteOffset < a.data.byteOffset + a.data.byteLength;
}

/** A Float32Array whose length getter lies (issue 15). */
class LyingArray extends Float32Array {
  override get length(): number {
    return 96;
  }
}

describe('tensors resident in wasm memory by default', () => {
  it('tensor() and wasm layer outputs live in wasm memory; js layer outputs do not; the numbers match', () => {
    const random = new Random(4);
    const shape = [4, 3, 5, 5];
    const values = random.normals(300, 1, 2);
    const dyValues = random.normals(300);
    const x = tensor(values, shape);
    assert.ok(inWasm(x));
    const wasm = new BatchNorm2d(3, { backend: 'wasm' });
    const js = new BatchNorm2d(3, { backend: 'js' });
    const y = wasm.forward(x);
    const dx = wasm.backward(tensor(dyValues, shape));
    assert.ok(inWasm(y) && inWasm(dx));
    const yJs = js.forward({ data: Float32Array.from(values), shape });
    const dxJs = js.backward({ data: Float32Array.from(dyValues), shape });
    assert.ok(!inWasm(yJs) && !inWasm(dxJs));
    assert.ok(maxAbsDiff(y.data, yJs.data) < 1e-5 && maxAbsDiff(dx.data, dxJs.data) < 1e-5);
    // a resident tensor given to the js backend is read where it lies
    assert.ok(maxAbsDiff(new BatchNorm2d(3, { backend: 'js' }).forward(x).data, yJs.data) === 0);
  });

  it('dispose() and Symbol.dispose return the memory; a second dispose frees nothing else', () => {
    const before = wasmMemory().used;
    const a = tensor(new Float32Array(1000), [1000]);
    const b = tensor(new Float32Array(1000), [1000]);
    assert.ok(wasmMemory().used >= before + 8000);
    a.dispose();
    b[Symbol.dispose]();
    assert.equal(wasmMemory().used, before);
    const c = tensor(new Float32Array(1000).fill(7), [1000]);
    a.dispose();
    assert.equal(wasmMemory().used, before + 4000);
    assert.equal(c.data[999], 7);
    c.dispose();
  });

  it('a disposed tensor given to a layer is an error, not a read of whatever lives there now', () => {
    const bn = new BatchNorm1d(4, { backend: 'wasm' });
    const x = tensor(new Random(2).normals(32), [8, 4]);
    x.dispose();
    const other = tensor(new Float32Array(32).fill(5), [8, 4]);
    assert.throws(() => bn.forward(x), isCode('disposed'));
    assert.equal(bn.numBatchesTracked, 0);
    other.dispose();
  });

  it('stays within the budget over 20,000 calls with no dispose(), falling back to plain arrays with the same numbers', () => {
    setResidentBudget(wasmMemory().used + (1 << 20));
    try {
      const bn = new BatchNorm2d(16, { backend: 'wasm' });
      const random = new Random(8);
      const x = { data: Float32Array.from(random.normals(8 * 16 * 8 * 8)), shape: [8, 16, 8, 8] };
      const first = bn.forward(x);
      const step = () => {
        const y = bn.forward(x);
        bn.backward(y);
        return y;
      };
      // past the budget within the first calls; then nothing grows
      for (let i = 0; i < 100; i++) step();
      const { size, used } = wasmMemory();
      let last: Tensor = first;
      for (let i = 0; i < 20000; i++) last = step();
      assert.equal(wasmMemory().size, size);
      assert.equal(wasmMemory().used, used);
      assert.ok(!inWasm(last));
      assert.ok(maxAbsDiff(last.data, first.data) < 1e-6);
    } finally {
      setResidentBudget(DEFAULT_RESIDENT_BUDGET);
    }
  });
});

describe('wasm memory safety (issue 15 repros)', () => {
  it('a Float32Array whose length lies is rejected as input and as out, and its neighbour is untouched', () => {
    const neighbour = wasmTensor('float32', [96]);
    neighbour.data.fill(3);
    const lying = new LyingArray(16);
    const bn = new BatchNorm1d(4, { backend: 'wasm' });
    const x = { data: lying, shape: [24, 4] };
    assert.throws(() => bn.forward(x), isCode('length'));
    const good = tensor(new Random(1).normals(96), [24, 4]);
    assert.throws(() => bn.forward(good, { out: { data: lying, shape: [24, 4] } }), isCode('length'));
    // straight into the kernels, past the layer's checks
    const view = normView({ kind: 'batch' }, [24, 4], 'channels-first');
    const stats = () => new Float64Array(4);
    assert.throws(() => {
      backends.wasm.forwardTrain(new Float32Array(96), lying, view, null, null, 1e-5, stats(), stats(), stats());
    }, isCode('length'));
    assert.throws(() => {
      backends.wasm.forwardTrain(lying, good.data, view, null, null, 1e-5, stats(), stats(), stats());
    }, isCode('length'));
    assert.ok(neighbour.data.every((v) => v === 3));
    freeWasmTensor(neighbour);
    good.dispose();
  });

  it("wasmTensor('float32', [NaN]) and [-1] throw, leak nothing, and later tensors do not alias", () => {
    const before = wasmMemory().used;
    assert.throws(() => wasmTensor('float32', [Number.NaN]), isCode('shape'));
    assert.throws(() => wasmTensor('float32', [-1]), isCode('shape'));
    assert.throws(() => wasmTensor('float32', [2.5]), isCode('shape'));
    assert.equal(wasmMemory().used, before);
    const a = wasmTensor('float32', [10]);
    const b = wasmTensor('float32', [10]);
    assert.ok(!overlaps(a, b));
    const bn = new BatchNorm1d(2, { backend: 'wasm' });
    bn.forward(tensor([1, 2, 3, 4], [2, 2]));
    a.dispose();
    b.dispose();
  });

  it("dtype 'int8' is an error, not a Float32Array", () => {
    // as a JavaScript caller would pass it
    assert.throws(() => {
      Reflect.apply(wasmTensor, undefined, ['int8', [4]]);
    }, isCode('dtype'));
  });

  it('freeing a stale handle whose block was reused leaves the live tensor alone', () => {
    const before = wasmMemory().used;
    const a = wasmTensor('float32', [64]);
    freeWasmTensor(a);
    const b = wasmTensor('float32', [64]);
    assert.equal(b.data.byteOffset, a.data.byteOffset);
    freeWasmTensor(a);
    a.dispose();
    const c = wasmTensor('float32', [64]);
    assert.ok(!overlaps(b, c));
    b.dispose();
    c.dispose();
    assert.equal(wasmMemory().used, before);
    assert.throws(() => {
      freeWasmTensor({ data: new Float32Array(4), shape: [4] });
    }, /does not live in wasm memory/);
  });

  it('a call whose copies cannot fit fails before the memory grows (the 2^29-element repro, scaled down)', () => {
    // an arena limited to 4 MiB stands for the 4 GiB wasm32 limit: x and y of 3 MiB each cannot both fit
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
    const arena = new Arena(memory, 4 << 20);
    const x = new Float32Array(3 << 18);
    assert.throws(() => new Staging(arena, 'float32', [{ array: x, length: x.length, what: 'x' }, { array: new Float32Array(3 << 18), length: x.length, what: 'y', role: 'output' }]).stage(), isCode('backend'));
    assert.equal(memory.buffer.byteLength, 65536);
    assert.equal(arena.used, 0);
    // one of them fits
    const st = new Staging(arena, 'float32', [{ array: x, length: x.length, what: 'x' }]);
    assert.ok(st.stage()[0] > 0);
    st.free();
    assert.equal(arena.used, 0);
  });

  it('a view the kernels cannot index safely is refused before any array reaches wasm', () => {
    const x = new Float32Array(24);
    const stats = () => new Float64Array(4);
    for (const view of [
      { outer: 1, span: 6, groups: 4, inner: 1, affinePerGroup: 2 },
      { outer: 1, span: -6, groups: 4, inner: -1, affinePerGroup: 1 },
      { outer: 1, span: Number.NaN, groups: 4, inner: 1, affinePerGroup: 1 },
    ]) {
      assert.throws(() => {
        backends.wasm.forwardTrain(new Float32Array(24), x, view, null, null, 1e-5, stats(), stats(), stats());
      }, isCode('shape'));
    }
  });

  it('blocks are handles: a byte count that is not a non-negative integer is refused', () => {
    const arena = new Arena(new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true }));
    for (const bytes of [Number.NaN, -1, 1.5, Infinity]) assert.throws(() => arena.alloc(bytes), isCode('backend'));
    const a = arena.alloc(100);
    arena.free(a);
    const b = arena.alloc(100);
    arena.free(a);
    assert.equal(arena.used, b.bytes);
  });

  it('a LayerNorm output from one layer feeds the next without copies and with the numbers of plain arrays', () => {
    const random = new Random(6);
    const values = random.normals(64 * 32, 2, 3);
    const [a, b] = [new LayerNorm([32], { backend: 'wasm' }), new LayerNorm([32], { backend: 'wasm' })];
    const y = b.forward(a.forward(tensor(values, [64, 32])));
    const [c, d] = [new LayerNorm([32], { backend: 'js' }), new LayerNorm([32], { backend: 'js' })];
    const yJs = d.forward(c.forward({ data: Float32Array.from(values), shape: [64, 32] }));
    assert.ok(inWasm(y));
    assert.ok(maxAbsDiff(y.data, yJs.data) < 1e-5);
  });
});
