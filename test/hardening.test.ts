// Every repro of the fuzzing run's API findings (issue 15): a NormkitError with its code, the layer
// unchanged, and nothing the caller owns written when a call throws.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runInNewContext } from 'node:vm';
import { NormkitError } from '../src/errors.ts';
import { wasmAvailable, wasmTensor, freeWasmTensor } from '../src/kernels/wasm/backend.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import { GroupNorm } from '../src/nn/groupnorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import { SGD } from '../src/nn/sgd.ts';
import type { Tensor } from '../src/tensor.ts';
import { tensor } from '../src/tensor.ts';
import { Random, expectUnchanged, f32, randomTensor, snapshot, trainedBatchNorm } from './helpers.ts';

/** Calls `self[method]` with arguments a JavaScript caller could pass, whatever the types say. */
function call(self: object, method: string, ...args: unknown[]): unknown {
  const fn: unknown = Reflect.get(self, method);
  if (typeof fn !== 'function') throw new Error(`no method ${method}`);
  const result: unknown = Reflect.apply(fn, self, args);
  return result;
}

/** `new Class(...args)` with arguments a JavaScript caller could pass. */
function construct(Class: new (...args: never[]) => unknown, ...args: unknown[]): unknown {
  const made: unknown = Reflect.construct(Class, args);
  return made;
}

function throwsCode(action: () => unknown, code: string, message: RegExp): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof NormkitError, `not a NormkitError: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, message);
    return true;
  });
}

describe('hardening: inputs a JavaScript caller can pass', () => {
  it('null, undefined and non-objects where tensors and options belong', () => {
    const { bn, dy } = trainedBatchNorm();
    const x = f32([2, 3, 2, 2]);
    const forward = (...args: unknown[]) => call(bn, 'forward', ...args);
    const backward = (...args: unknown[]) => call(bn, 'backward', ...args);
    expectUnchanged(bn, dy, () => forward(null), 'shape', /input: expected a tensor \{ data, shape \}, got null/);
    expectUnchanged(bn, dy, () => forward(undefined), 'shape', /got undefined/);
    expectUnchanged(bn, dy, () => forward(x, null), 'option', /forward options must be an object like \{ out \}, got null/);
    expectUnchanged(bn, dy, () => forward(x, { out: null }), 'shape', /out: expected a tensor/);
    expectUnchanged(bn, dy, () => forward(x, { outt: f32([2, 3, 2, 2]) }), 'option', /unexpected forward option 'outt'/);
    expectUnchanged(bn, dy, () => backward(null), 'shape', /grad_output: expected a tensor/);
    expectUnchanged(bn, dy, () => forward({ data: new Float32Array(24), shape: new Int32Array([2, 3, 2, 2]) }), 'shape', /expected a shape as an array of non-negative integers, got Int32Array/);
    expectUnchanged(bn, dy, () => forward({ data: new Float32Array(24), shape: '2,3,2,2' }), 'shape', /got '2,3,2,2'/);
    expectUnchanged(bn, dy, () => forward({ data: new Int8Array(24), shape: [2, 3, 2, 2] }), 'dtype', /expected data as Float32Array or Float64Array, got Int8Array/);
  });

  it('loadStateDict with no object, a string or bad options', () => {
    const { bn, dy } = trainedBatchNorm();
    const load = (...args: unknown[]) => call(bn, 'loadStateDict', ...args);
    const state = bn.stateDict();
    expectUnchanged(bn, dy, () => load(null), 'state-dict', /expected a state dict object \(key to values\), got null/);
    expectUnchanged(bn, dy, () => load('weight'), 'state-dict', /got 'weight'/);
    expectUnchanged(bn, dy, () => load(state, null), 'option', /loadStateDict options must be an object like \{ strict \}, got null/);
    expectUnchanged(bn, dy, () => load(state, { strict: 'yes' }), 'option', /strict must be true or false, got 'yes'/);
    expectUnchanged(bn, dy, () => load({ ...state, weight: { length: 2 ** 32 } }), 'state-dict', /size mismatch for weight: copying a param with shape \[4294967296\]/);
    expectUnchanged(bn, dy, () => load({ ...state, num_batches_tracked: Number.NaN }), 'state-dict', /num_batches_tracked must be a non-negative integer, got NaN/);
    expectUnchanged(bn, dy, () => load({ ...state, num_batches_tracked: 2n ** 60n }), 'state-dict', /got 1152921504606846976/);
  });

  it('an int64 counter given as a bigint loads', () => {
    const bn = new BatchNorm2d(3);
    const state = { ...bn.stateDict(), num_batches_tracked: 3n };
    call(bn, 'loadStateDict', state);
    assert.equal(bn.numBatchesTracked, 3);
    assert.deepEqual(bn.stateDict().num_batches_tracked, 3);
  });

  it('constructors: null options, unknown or inapplicable keys, non-objects, sizes past what can be allocated', () => {
    const make = (fn: () => unknown) => fn;
    throwsCode(make(() => construct(BatchNorm2d, 3, null)), 'option', /BatchNorm2d: expected options as an object, got null/);
    throwsCode(make(() => construct(BatchNorm2d, 3, 'momentum=0.5')), 'option', /expected options as an object, got 'momentum=0.5'/);
    throwsCode(make(() => construct(BatchNorm2d, 3, { momentun: 0.5 })), 'option', /unexpected option 'momentun' \(did you mean 'momentum'\?\)/);
    throwsCode(make(() => construct(BatchNorm2d, 3, { backnd: 'js' })), 'option', /unexpected option 'backnd' \(did you mean 'backend'\?\)/);
    throwsCode(make(() => construct(LayerNorm, 4, { momentum: 0.5 })), 'option', /LayerNorm: unexpected option 'momentum'; LayerNorm takes eps, dtype, backend, nonFinite, elementwiseAffine/);
    throwsCode(make(() => construct(GroupNorm, 2, 4, { trackRunningStats: true })), 'option', /GroupNorm: unexpected option 'trackRunningStats'/);
    throwsCode(make(() => construct(LayerNorm, null)), 'option', /normalizedShape must be a positive integer or an array of them, got null/);
    throwsCode(make(() => construct(LayerNorm, { length: 2 })), 'option', /got Object/);
    throwsCode(make(() => new BatchNorm1d(2 ** 53)), 'size', /numFeatures must be at most 4294967295, got 9007199254740992/);
    throwsCode(make(() => new GroupNorm(2 ** 40, 2 ** 41)), 'size', /numGroups must be at most/);
    throwsCode(make(() => new LayerNorm([2 ** 31, 2 ** 31])), 'size', /normalizedShape \[2147483648, 2147483648\] has more than 4294967295 elements/);
  });

  it('train() takes a boolean; the backend setter takes a backend name only', () => {
    const { bn, dy } = trainedBatchNorm();
    expectUnchanged(bn, dy, () => call(bn, 'train', 'no'), 'option', /train\(mode\) takes true or false, got 'no'/);
    assert.equal(bn.training, true);
    const setBackend = (name: unknown) => {
      Reflect.set(bn, 'backend', name);
    };
    expectUnchanged(bn, dy, () => { setBackend('__proto__'); }, 'backend', /unknown backend '__proto__': expected one of/);
    expectUnchanged(bn, dy, () => { setBackend(7); }, 'backend', /unknown backend 7/);
  });

  it('a Float32Array from another realm is read as what it is', () => {
    const random = new Random(3);
    const x = randomTensor(random, [2, 3, 2, 2], 'float32');
    const foreign: unknown = runInNewContext('Float32Array.from(values)', { values: Array.from(x.data) });
    const expected = new BatchNorm2d(3, { backend: 'js' }).forward(x).data;
    const got = call(new BatchNorm2d(3, { backend: 'js' }), 'forward', { data: foreign, shape: [2, 3, 2, 2] });
    assert.ok(typeof got === 'object' && got !== null && 'data' in got && got.data instanceof Float32Array);
    assert.deepEqual(Array.from(got.data), Array.from(expected));
  });

  it('a Float32Array subclass whose length lies is read by its real length', () => {
    class Liar extends Float32Array {
      override get length(): number {
        return 96;
      }
    }
    const { bn, dy } = trainedBatchNorm();
    const liar = new Liar(16);
    expectUnchanged(bn, dy, () => bn.forward({ data: liar, shape: [2, 3, 4, 4] }), 'length', /data length 16 does not match shape \[2, 3, 4, 4\] \(96 elements\)/);
    const x = f32([2, 3, 4, 4]);
    const bn2 = new BatchNorm2d(3);
    expectUnchanged(bn2, null, () => bn2.forward(x, { out: { data: liar, shape: [2, 3, 4, 4] } }), 'length', /out: data length 16/);
  });

  it('a lying subclass in wasm memory reads and writes nothing of its neighbour', { skip: wasmAvailable() ? false : 'no wasm here' }, () => {
    const a = wasmTensor('float32', [16]);
    const neighbour = wasmTensor('float32', [96]);
    try {
      neighbour.data.fill(7);
      const liar = new (class extends Float32Array<ArrayBufferLike> {
        override get length(): number {
          return 96;
        }
      })(a.data.buffer, a.data.byteOffset, 16);
      const bn = new BatchNorm2d(3, { backend: 'wasm' });
      throwsCode(() => bn.forward(f32([2, 3, 4, 4]), { out: { data: liar, shape: [2, 3, 4, 4] } }), 'length', /data length 16/);
      throwsCode(() => bn.forward({ data: liar, shape: [2, 3, 4, 4] }), 'length', /data length 16/);
      assert.ok(neighbour.data.every((v) => v === 7), "the neighbour's memory changed");
    } finally {
      freeWasmTensor(neighbour);
      freeWasmTensor(a);
    }
  });
});

describe('hardening: outputs that share memory with inputs', () => {
  it('forward out over the input buffer, the same array or shifted by one element', () => {
    const random = new Random(5);
    const bn = new BatchNorm2d(3);
    const buffer = new Float32Array(25);
    buffer.set(randomTensor(random, [24], 'float32').data);
    const x = { data: buffer.subarray(0, 24), shape: [2, 3, 2, 2] };
    const owned = [buffer];
    expectUnchanged(bn, null, () => bn.forward(x, { out: { data: new Float32Array(buffer.buffer, 0, 24), shape: [2, 3, 2, 2] } }), 'alias', /out must not share memory with the input \(overlapping views of one buffer\)/, owned);
    expectUnchanged(bn, null, () => bn.forward(x, { out: { data: buffer.subarray(1, 25), shape: [2, 3, 2, 2] } }), 'alias', /out must not share memory with the input/, owned);
    expectUnchanged(bn, null, () => bn.forward(x, { out: x }), 'alias', /the same array/, owned);
  });

  it("backward out over the cached input or grad_output, and outputs over the layer's own arrays", () => {
    const { bn, dy } = trainedBatchNorm();
    const x = f32([2, 3, 2, 2], 2);
    x.data[0] = 5;
    bn.forward(x);
    const owned = [x.data, dy.data];
    expectUnchanged(bn, dy, () => bn.backward(dy, { out: { data: new Float32Array(x.data.buffer), shape: [2, 3, 2, 2] } }), 'alias', /out must not share memory with the input saved by forward/, owned);
    expectUnchanged(bn, dy, () => bn.backward(dy, { out: dy }), 'alias', /out must not share memory with grad_output/, owned);
    const small = new BatchNorm2d(3).eval();
    const weight = small.weight!.data;
    expectUnchanged(small, null, () => small.forward(f32([1, 3, 1, 1]), { out: { data: weight, shape: [1, 3, 1, 1] } }), 'alias', /the layer's parameters, gradients or running statistics/, [weight]);
  });
});

describe('hardening: inputs changed between forward and backward', () => {
  it("an input overwritten by normkit (another layer's out) is refused with PyTorch's wording", () => {
    const random = new Random(7);
    const bn = new BatchNorm2d(3);
    const other = new BatchNorm2d(3);
    const x = randomTensor(random, [2, 3, 2, 2], 'float32');
    const y = bn.forward(x);
    other.forward(y, { out: x }); // reuses x's buffer
    throwsCode(() => bn.backward(f32([2, 3, 2, 2])), 'modified', /one of the variables needed for gradient computation has been modified by an inplace operation: the input of size \[2, 3, 2, 2\] saved by forward is at version 1; expected version 0 instead/);
    // a new forward saves the new contents
    bn.forward(x);
    assert.equal(bn.backward(f32([2, 3, 2, 2])).data.length, 24);
  });

  it('a view that overlaps the saved input counts; a disjoint view of the same buffer does not', () => {
    const random = new Random(8);
    const buffer = new Float32Array(48);
    buffer.set(randomTensor(random, [48], 'float32').data);
    const bn = new BatchNorm2d(3);
    const src = new BatchNorm2d(3);
    const x = { data: buffer.subarray(0, 24), shape: [2, 3, 2, 2] };
    bn.forward(x);
    src.forward(randomTensor(random, [2, 3, 2, 2], 'float32'), { out: { data: buffer.subarray(24, 48), shape: [2, 3, 2, 2] } });
    assert.equal(bn.backward(f32([2, 3, 2, 2])).data.length, 24);
    src.forward(randomTensor(random, [2, 3, 2, 2], 'float32'), { out: { data: buffer.subarray(20, 44), shape: [2, 3, 2, 2] } });
    throwsCode(() => bn.backward(f32([2, 3, 2, 2])), 'modified', /at version 1/);
  });

  it('weight changed by an optimizer step or loadStateDict between forward and backward', () => {
    const random = new Random(9);
    const bn = new BatchNorm2d(3);
    bn.forward(randomTensor(random, [2, 3, 2, 2], 'float32'));
    bn.backward(randomTensor(random, [2, 3, 2, 2], 'float32'));
    new SGD(bn.parameters(), { lr: 0.1 }).step();
    throwsCode(() => bn.backward(f32([2, 3, 2, 2])), 'modified', /weight of size \[3\] saved by forward is at version 1/);
    bn.forward(randomTensor(random, [2, 3, 2, 2], 'float32'));
    bn.loadStateDict(bn.stateDict());
    throwsCode(() => bn.backward(f32([2, 3, 2, 2])), 'modified', /weight of size \[3\]/);
  });
});

describe('hardening: the non-finite policy covers statistics that overflow', () => {
  const huge = (): Tensor => randomTensor(new Random(11), [16, 3], 'float32', 0, 1e30);

  for (const backend of ['js', 'reference'] as const) {
    it(`${backend}: 'throw' refuses a finite batch whose running variance overflows float32, and writes no out`, () => {
      const bn = new BatchNorm1d(3, { nonFinite: 'throw', backend });
      const out = f32([16, 3], 4);
      expectUnchanged(bn, null, () => bn.forward(huge(), { out }), 'non-finite', /batch statistics overflow \(finite input too large for the statistics\)/, [out.data]);
    });

    it(`${backend}: 'skip-update' keeps the running statistics finite; 'propagate' lets Infinity in`, () => {
      const skip = new BatchNorm1d(3, { nonFinite: 'skip-update', backend });
      const before = snapshot(skip);
      const y = skip.forward(huge());
      assert.ok(y.data.every(Number.isFinite), 'y itself is finite: the float64 statistics are');
      assert.equal(snapshot(skip), before);
      const propagate = new BatchNorm1d(3, { backend });
      propagate.forward(huge());
      assert.ok(propagate.runningVar!.some((v) => v === Number.POSITIVE_INFINITY));
    });
  }

  it("'throw' with non-finite input says so, and leaves a given out as it was", () => {
    const bn = new BatchNorm1d(2, { nonFinite: 'throw' });
    const x = tensor([1, 2, 3, Number.NaN, 5, 6, 7, 8], [4, 2]);
    const out = f32([4, 2], 9);
    expectUnchanged(bn, null, () => bn.forward(x, { out }), 'non-finite', /are not finite \(NaN or Inf in the input\)/, [out.data]);
  });
});
