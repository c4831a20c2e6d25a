// safetensors: every fixture file's values, every malformed file rejected with the layer unchanged, bit-exact round trips.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NormkitError } from '../src/errors.ts';
import { float16ToNumber } from '../src/io/half.ts';
import { loadSafetensors, saveSafetensors } from '../src/io/safetensors.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import { FrozenBatchNorm2d } from '../src/nn/frozen.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import { Linear } from '../src/nn/linear.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { Sigmoid } from '../src/nn/sigmoid.ts';
import { Random, fixtureDir, randomTensor, snapshot } from './helpers.ts';

const dir = `${fixtureDir}safetensors/`;
const expect = JSON.parse(readFileSync(`${dir}expect.json`, 'utf8')) as { files: Record<string, Record<string, number[] | number>>; must_reject: string[] };
const file = (name: string): Uint8Array => new Uint8Array(readFileSync(`${dir}${name}.safetensors`));
const plain = (state: Record<string, ArrayLike<number> | number>) => Object.fromEntries(Object.entries(state).map(([k, v]) => [k, typeof v === 'number' ? v : Array.from(v)]));

function sequential(dtype: 'float32' | 'float64'): Sequential {
  return new Sequential(new Linear(4, 3, { dtype }), new BatchNorm1d(3, { dtype }), new Sigmoid(), new Linear(3, 2, { dtype }));
}

describe('safetensors', () => {
  for (const [name, values] of Object.entries(expect.files)) {
    it(`${name}: every tensor's values, loaded into float32 and float64 layers`, () => {
      const state = loadSafetensors(file(name));
      assert.deepEqual(plain(state), values);
      for (const dtype of ['float32', 'float64'] as const) {
        const module = name === 'sequential' ? sequential(dtype) : new BatchNorm2d(3, { dtype });
        module.loadStateDict(state);
        const expected = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v === 'number' ? v : Array.from(dtype === 'float32' ? Float32Array.from(v) : v)]));
        assert.deepEqual(plain(module.stateDict()), expected);
      }
    });
  }

  it('FrozenBatchNorm2d loads the BatchNorm2d file (num_batches_tracked dropped)', () => {
    const frozen = new FrozenBatchNorm2d(3);
    frozen.loadStateDict(loadSafetensors(file('bn2d_float32')));
    assert.deepEqual(Array.from(frozen.runningVar), expect.files.bn2d_float32.running_var);
  });

  for (const name of expect.must_reject) {
    it(`rejects ${name} with a NormkitError, the layer unchanged`, () => {
      const bn = new BatchNorm2d(3);
      bn.forward(randomTensor(new Random(1), [2, 3, 2, 2], 'float32'));
      const before = snapshot(bn);
      assert.throws(
        () => {
          bn.loadStateDict(loadSafetensors(file(name)));
        },
        (e: unknown) => e instanceof NormkitError && e.message.startsWith('safetensors: '),
      );
      assert.equal(snapshot(bn), before);
    });
  }

  it('says what is wrong in each malformed file', () => {
    const message = (name: string): string => {
      try {
        loadSafetensors(file(name));
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
      return 'accepted';
    };
    assert.match(message('bad_header_not_json'), /header is not UTF-8 JSON/);
    assert.match(message('bad_header_too_long'), /header length 1099511627776 runs past the end of the file/);
    assert.match(message('bad_offsets_out_of_range'), /tensor "bias": data_offsets \[0, 1000000000\] out of range/);
    assert.match(message('bad_offsets_overlap'), /overlap/);
    assert.match(message('bad_shape_mismatch'), /tensor "weight": shape \[4\] of F32 needs 16 bytes, data_offsets give 12/);
    assert.match(message('bad_truncated'), /out of range \(the data has 51 bytes\)/);
    assert.match(message('bad_unknown_dtype'), /tensor "weight": unknown dtype "F99"/);
  });

  it('never reads out of bounds: cut or corrupted files load or throw a NormkitError', () => {
    const sources = ['bn2d_float32', 'bn2d_float16', 'sequential'].map(file);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 }), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), (k, cut, flips) => {
        const bytes = sources[k].slice(0, cut % (sources[k].length + 1));
        for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] = value;
        try {
          loadSafetensors(bytes);
        } catch (e) {
          if (!(e instanceof NormkitError)) throw e;
        }
      }),
      { seed: 12, numRuns: 3000 },
    );
  });

  it('round trips bit-exactly (F32 and F64), with shapes from the module: awkward values, Sequential keys, LayerNorm', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const model = sequential(dtype);
      model.forward(randomTensor(new Random(2), [5, 4], dtype));
      const bn = model.modules[1];
      assert.ok(bn instanceof BatchNorm1d);
      bn.weight!.data.set([-0, 1e-45, dtype === 'float32' ? 3.4e38 : 1.7e308]);
      const bytes = saveSafetensors(model);
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))))) as Record<string, { dtype: string; shape: number[] }>;
      assert.deepEqual(header['0.weight'], { ...header['0.weight'], dtype: dtype === 'float32' ? 'F32' : 'F64', shape: [3, 4] });
      assert.deepEqual(header['1.num_batches_tracked'].shape, []);
      const copy = sequential(dtype);
      copy.loadStateDict(loadSafetensors(bytes));
      const a = model.stateDict();
      const b = copy.stateDict();
      for (const key of Object.keys(a)) {
        const [va, vb] = [a[key], b[key]];
        if (typeof va === 'number' || typeof vb === 'number') assert.equal(va, vb);
        else assert.deepEqual(new Uint8Array(vb.buffer, vb.byteOffset, vb.byteLength), new Uint8Array(va.buffer, va.byteOffset, va.byteLength), key);
      }
      assert.equal(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8, 0);
    }
    const ln = new LayerNorm([2, 3]);
    assert.ok(loadSafetensors(saveSafetensors(ln)).weight instanceof Float64Array);
    assert.equal(saveSafetensors({ w: new Float32Array([1, 2]), n: 3 }).length % 8, 0);
  });

  it('decodes binary16 edge cases', () => {
    assert.deepEqual([0x0000, 0x8000, 0x0001, 0x03ff, 0x3c00, 0x7bff, 0x7c00, 0xfc00].map(float16ToNumber), [0, -0, 2 ** -24, 1023 * 2 ** -24, 1, 65504, Infinity, -Infinity]);
    assert.ok(Number.isNaN(float16ToNumber(0x7e00)));
  });
});
