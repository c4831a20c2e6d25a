// A fuzz suite of bad input (issue 15): for every layer kind, backend and dtype, random wrong arguments to
// every public method must throw a NormkitError, and leave the layer (parameters, running statistics,
// num_batches_tracked, gradients, the next backward's dx) and the caller's out as they were, compared by
// value. The generators make only calls that are wrong by a rule independent of normkit (element count,
// dtype, key set, value types), so every call must be refused. NORMKIT_LONG=1 runs 20x the cases.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NormkitError } from '../src/errors.ts';
import type { BackendName } from '../src/kernels/contract.ts';
import { BatchNorm1d, BatchNorm2d, BatchNorm3d } from '../src/nn/batchnorm.ts';
import { GroupNorm } from '../src/nn/groupnorm.ts';
import { InstanceNorm2d } from '../src/nn/instancenorm.ts';
import { LayerNorm } from '../src/nn/layernorm.ts';
import type { Normalization } from '../src/nn/normalization.ts';
import type { DType, FloatArray } from '../src/tensor.ts';
import { allocate } from '../src/tensor.ts';
import { describeBackends } from './backends.ts';
import { Random } from './helpers.ts';

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
    fc.integer({ min: 0, max: 3 * n }).filter((k) => k !== n).map((k) => allocate(dtype, k)),
    fc.constantFrom(new Int8Array(n), new Uint8Array(n * 4), new Int32Array(n), new DataView(new ArrayBuffer(n * 4)), Array.from({ length: n }, () => 1), new ArrayBuffer(n * 4)),
    fc.anything(),
  );
  // a shape is wrong for n elements unless it is an array of positive integers whose product is n
  const fitsN = (s: unknown): boolean => Array.isArray(s) && s.every((d) => Number.isSafeInteger(d) && (d as number) > 0) && count(s as number[]) === n;
  const badShape = fc.oneof(
    fc.array(fc.oneof(fc.integer({ min: -3, max: 2 ** 33 }), fc.constantFrom(Number.NaN, 1.5, Infinity, -0.5, '2')), { maxLength: 6 }),
    fc.constantFrom(new Int32Array(shape), shape.join(','), null, { length: shape.length }),
    fc.anything(),
  );
  return fc.oneof(
    fc.record({ data, shape: fc.constant([...shape]) }),
    fc.record({ data: fc.constant(allocate(dtype, n)), shape: badShape.filter((s) => !fitsN(s)) }),
    fc.record({ data: fc.constant(allocate(dtype, n)), shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 6 }).filter((s) => !fitsN(s)) }),
    fc.anything(),
  );
}

/** A state dict of the right keys with one entry replaced by something wrong for it, or with a key too many. */
function badState(layer: Normalization): fc.Arbitrary<unknown> {
  const good = layer.stateDict();
  const keys = Object.keys(good);
  const notArray = fc.constantFrom(null, undefined, 1, -1, Number.NaN, true, {}, () => 1, Symbol('x'), 2n);
  const badArray = (length: number) =>
    fc.oneof(
      notArray,
      fc.integer({ min: 0, max: 9 }).filter((k) => k !== length).map((k) => new Float64Array(k)),
      fc.array(fc.double(), { minLength: length, maxLength: length }).chain((values) =>
        fc.record({ at: fc.nat({ max: Math.max(0, length - 1) }), v: fc.constantFrom('1', null, undefined, {}, 1n) }).map(({ at, v }) => values.map((x, i): unknown => (i === at ? v : x))),
      ),
      fc.constantFrom({ length: 2 ** 32 }),
    );
  const badCount = fc.oneof(fc.constantFrom(-1, 1.5, Number.NaN, Infinity, '1', null, undefined, [1], {}, 2n ** 64n, -1n, 2 ** 53), fc.double().filter((v) => !Number.isSafeInteger(v) || v < 0));
  const badValue = (key: string): fc.Arbitrary<unknown> => {
    const value = good[key];
    return typeof value === 'number' ? badCount : badArray(value.length);
  };
  return fc.oneof(
    keys.length === 0 ? fc.constant(null) : fc.constantFrom(...keys).chain((key) => badValue(key).map((v) => ({ ...good, [key]: v }))),
    fc.record({ extra: fc.string(), value: fc.anything() }).map(({ extra, value: v }) => ({ ...good, [`x${extra}`]: v })),
    fc.anything().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).length === 0),
  );
}

type Call = { readonly method: 'forward' | 'backward' | 'loadStateDict' | 'train'; readonly args: readonly unknown[] };

/** Options that are wrong: an `out` that is not a tensor of the output's shape and dtype, or not an object. */
function badOptions(tensor: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof(tensor.map((out) => ({ out })), fc.constantFrom(1, 'out', true, Symbol('o'), 2n, () => ({})));
}

function calls(kind: Kind, layer: Normalization, dtype: DType): fc.Arbitrary<Call> {
  const goodX = { data: filled(dtype, count(kind.shape), 2), shape: [...kind.shape] };
  const tensor = badTensor(kind.shape, dtype);
  return fc.oneof(
    tensor.map((x) => ({ method: 'forward' as const, args: [x] })),
    badOptions(tensor).map((options) => ({ method: 'forward' as const, args: [goodX, options] })),
    tensor.map((dy) => ({ method: 'backward' as const, args: [dy] })),
    badOptions(tensor).map((options) => ({ method: 'backward' as const, args: [goodX, options] })),
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

/** Everything a call may change, by value (NaN equals NaN, -0 differs from 0): state dict and gradients. */
function stateOf(layer: Normalization): { state: [string, number | number[]][]; grads: number[][] } {
  const state = Object.entries(layer.stateDict()).map(([k, v]): [string, number | number[]] => [k, typeof v === 'number' ? v : Array.from(v)]);
  return { state, grads: layer.parameters().map((p) => Array.from(p.grad)) };
}

describeBackends('fuzz: bad input to every layer', ({ name: backend, it }) => {
  for (const kind of kinds) {
    for (const dtype of ['float32', 'float64'] as const) {
      it(`${kind.name} ${dtype}`, { dtype }, () => {
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
            const dxBefore = Array.from(layer.backward(dy).data);
            const before = stateOf(layer);
            const owned = arraysIn(call);
            const ownedBefore = owned.map((a) => Array.from(a));
            assert.throws(
              () => {
                const method: unknown = Reflect.get(layer, call.method);
                assert.equal(typeof method, 'function');
                if (typeof method === 'function') Reflect.apply(method, layer, [...call.args]);
              },
              (error: unknown) => {
                assert.ok(error instanceof NormkitError, `${call.method} threw ${String(error)}, not a NormkitError`);
                return true;
              },
              `${call.method} accepted a bad call`,
            );
            assert.deepStrictEqual(stateOf(layer), before, 'state changed by a call that threw');
            owned.forEach((a, i) => {
              assert.deepStrictEqual(Array.from(a), ownedBefore[i], "the caller's out changed");
            });
            assert.deepStrictEqual(Array.from(layer.backward(dy).data), dxBefore, 'the cached forward changed');
          }),
          { numRuns: runs, seed: 15 },
        );
      });
    }
  }
});
