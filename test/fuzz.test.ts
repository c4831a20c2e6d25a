// A fuzz suite of bad input (issue 15): for every layer kind, backend and dtype, random wrong arguments
// to every public method either work or throw a NormkitError — never another error — and a call that
// throws leaves the layer (state dict, gradients, the next backward's dx) and the caller's out as they were.
// NORMKIT_LONG=1 runs 20x the cases.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NormkitError } from '../src/errors.ts';
import { wasmAvailable } from '../src/kernels/wasm/backend.ts';
import type { BackendName } from '../src/kernels/contract.ts';
import { BatchNorm1d, BatchNorm2d, BatchNorm3d } from '../src/nn/batchnorm.ts';
import { GroupNorm } from '../src/nn/groupnorm.ts';
import { InstanceNorm2d } from '../src/nn/instancenorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import type { Normalization } from '../src/nn/normalization.ts';
import type { DType, FloatArray } from '../src/tensor.ts';
import { allocate } from '../src/tensor.ts';
import { Random, snapshot } from './helpers.ts';

const runs = (process.env.NORMKIT_LONG === undefined ? 1 : 20) * 60;

interface Kind {
  readonly name: string;
  readonly shape: readonly number[];
  make(dtype: DType, backend: BackendName): Normalization;
}

const kinds: readonly Kind[] = [
  { name: 'BatchNorm1d', shape: [4, 3], make: (dtype, backend) => new BatchNorm1d(3, { dtype, backend, nonFinite: 'throw' }) },
  { name: 'BatchNorm2d', shape: [2, 3, 2, 2], make: (dtype, backend) => new BatchNorm2d(3, { dtype, backend, momentum: null }) },
  { name: 'BatchNorm3d', shape: [2, 2, 2, 1, 2], make: (dtype, backend) => new BatchNorm3d(2, { dtype, backend, layout: 'channels-last' }) },
  { name: 'InstanceNorm2d', shape: [2, 3, 2, 2], make: (dtype, backend) => new InstanceNorm2d(3, { dtype, backend, affine: true, trackRunningStats: true }) },
  { name: 'GroupNorm', shape: [2, 4, 3], make: (dtype, backend) => new GroupNorm(2, 4, { dtype, backend, nonFinite: 'skip-update' }) },
  { name: 'LayerNorm', shape: [3, 2, 4], make: (dtype, backend) => new LayerNorm([2, 4], { dtype, backend }) },
];

const count = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

function filled(dtype: DType, n: number, seed: number): FloatArray {
  const data = allocate(dtype, n);
  data.set(new Random(seed).normals(n, 1, 2));
  return data;
}

/** Values a JavaScript caller might pass where a tensor belongs, built around the right shape. */
function badTensor(shape: readonly number[], dtype: DType): fc.Arbitrary<unknown> {
  const n = count(shape);
  const other: DType = dtype === 'float32' ? 'float64' : 'float32';
  const data = fc.oneof(
    fc.constant(allocate(other, n)),
    fc.integer({ min: 0, max: 3 * n }).map((k) => allocate(dtype, k)),
    fc.constantFrom(new Int8Array(n), new Uint8Array(n * 4), new Int32Array(n), new DataView(new ArrayBuffer(n * 4)), Array.from({ length: n }, () => 1), new ArrayBuffer(n * 4)),
    fc.anything(),
  );
  const badShape = fc.oneof(
    fc.array(fc.oneof(fc.integer({ min: -3, max: 2 ** 33 }), fc.constantFrom(Number.NaN, 1.5, Infinity, -0.5, '2')), { maxLength: 6 }),
    fc.constantFrom(new Int32Array(shape), shape.join(','), null, { length: shape.length }),
    fc.anything(),
  );
  return fc.oneof(
    fc.record({ data, shape: fc.constant([...shape]) }),
    fc.record({ data: fc.constant(allocate(dtype, n)), shape: badShape }),
    fc.record({ data: fc.constant(allocate(dtype, n)), shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 6 }) }),
    fc.anything(),
  );
}

/** A state dict of the right keys with one entry replaced by something wrong. */
function badState(layer: Normalization): fc.Arbitrary<unknown> {
  const good = layer.stateDict();
  const keys = Object.keys(good);
  const value = fc.oneof(
    fc.anything(),
    fc.integer({ min: 0, max: 9 }).map((k) => new Float64Array(k)),
    fc.array(fc.oneof(fc.double(), fc.constantFrom(Number.NaN, -1, '1', null)), { maxLength: 8 }),
    fc.constantFrom(-1, 1.5, Number.NaN, 2n ** 64n, -1n, { length: 2 ** 32 }),
  );
  return fc.oneof(
    keys.length === 0 ? fc.anything() : fc.record({ key: fc.constantFrom(...keys), value }).map(({ key, value: v }) => ({ ...good, [key]: v })),
    fc.record({ extra: fc.string(), value }).map(({ extra, value: v }) => ({ ...good, [`x${extra}`]: v })),
    fc.anything(),
  );
}

type Call = { readonly method: 'forward' | 'backward' | 'loadStateDict' | 'train'; readonly args: readonly unknown[] };

function calls(kind: Kind, layer: Normalization, dtype: DType): fc.Arbitrary<Call> {
  const goodX = { data: filled(dtype, count(kind.shape), 2), shape: [...kind.shape] };
  const tensor = badTensor(kind.shape, dtype);
  return fc.oneof(
    tensor.map((x) => ({ method: 'forward' as const, args: [x] })),
    fc.oneof(tensor.map((out) => ({ out })), fc.anything()).map((options) => ({ method: 'forward' as const, args: [goodX, options] })),
    tensor.map((dy) => ({ method: 'backward' as const, args: [dy] })),
    fc.oneof(tensor.map((out) => ({ out })), fc.anything()).map((options) => ({ method: 'backward' as const, args: [goodX, options] })),
    badState(layer).map((state) => ({ method: 'loadStateDict' as const, args: [state] })),
    fc.anything().filter((mode) => typeof mode !== 'boolean' && mode !== undefined).map((mode) => ({ method: 'train' as const, args: [mode] })),
  );
}

function arraysIn(call: Call): FloatArray[] {
  const options = call.args[1];
  if (typeof options !== 'object' || options === null || !('out' in options)) return [];
  const out = options.out;
  if (typeof out !== 'object' || out === null || !('data' in out)) return [];
  return out.data instanceof Float32Array || out.data instanceof Float64Array ? [out.data] : [];
}

const backendsHere: BackendName[] = wasmAvailable() ? ['js', 'wasm'] : ['js'];

describe('fuzz: bad input to every layer', () => {
  for (const kind of kinds) {
    for (const backend of backendsHere) {
      for (const dtype of ['float32', 'float64'] as const) {
        it(`${kind.name} (${backend}, ${dtype})`, () => {
          const dy = { data: filled(dtype, count(kind.shape), 3), shape: [...kind.shape] };
          const fresh = (): Normalization => {
            const layer = kind.make(dtype, backend);
            layer.forward({ data: filled(dtype, count(kind.shape), 1), shape: [...kind.shape] });
            layer.backward(dy);
            return layer;
          };
          const template = fresh();
          fc.assert(
            fc.property(calls(kind, template, dtype), (call) => {
              const layer = fresh();
              const before = snapshot(layer);
              const dxBefore = Array.from(layer.backward(dy).data);
              const afterProbe = snapshot(layer);
              const owned = arraysIn(call);
              const ownedBefore = owned.map((a) => Array.from(a));
              let threw = false;
              try {
                const method: unknown = Reflect.get(layer, call.method);
                if (typeof method === 'function') Reflect.apply(method, layer, [...call.args]);
              } catch (error) {
                threw = true;
                assert.ok(error instanceof NormkitError, `${call.method} threw ${String(error)}`);
              }
              if (!threw) {
                assert.notEqual(call.method, 'train', 'train() took a value that is not a boolean');
                return;
              }
              assert.equal(snapshot(layer), afterProbe, 'state changed by a call that threw');
              owned.forEach((a, i) => {
                assert.deepEqual(Array.from(a), ownedBefore[i], "the caller's out changed");
              });
              assert.deepEqual(Array.from(layer.backward(dy).data), dxBefore, 'the cached forward changed');
              assert.ok(before.length > 0);
            }),
            { numRuns: runs, seed: 15 },
          );
        });
      }
    }
  }
});
