// Fuzzing the newer surface (issue 27): Linear, FrozenBatchNorm2d, the tfjs options, safetensors save and
// the CLI's numeric flags. Every bad call throws a NormkitError (the CLI: one line, exit 2, no "internal
// error") and leaves state as it was. NORMKIT_LONG=1 runs 20x the cases.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { NormkitError } from '../src/errors.ts';
import { loadSafetensors, saveSafetensors } from '../src/io/safetensors.ts';
import { useNormkit } from '../src/tfjs/install.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import { FrozenBatchNorm2d } from '../src/nn/frozen.ts';
import { Linear } from '../src/nn/linear.ts';
import type { Module } from '../src/nn/module.ts';
import type { Tensor } from '../src/tensor.ts';
import { snapshot } from './helpers.ts';

const runs = (process.env.NORMKIT_LONG === undefined ? 1 : 20) * 60;

/** Calls `self[method]` with arguments a JavaScript caller could pass, whatever the types say. */
function call(self: object, method: string, ...args: unknown[]): unknown {
  const fn: unknown = Reflect.get(self, method);
  if (typeof fn !== 'function') throw new Error(`no method ${method}`);
  const result: unknown = Reflect.apply(fn, self, args);
  return result;
}

function isNormkitError(error: unknown): boolean {
  return error instanceof NormkitError;
}

/** The module's state dict and gradients after a backward of `dy`, and that backward's dx. */
function probe(module: Module, dy: Tensor): { state: string; dx: number[] } {
  const dx = Array.from(module.backward(dy).data);
  return { state: snapshot(module), dx };
}

/** Values a JavaScript caller might pass where a tensor of `shape` belongs. */
function badTensor(shape: readonly number[]): fc.Arbitrary<unknown> {
  const n = shape.reduce((p, d) => p * d, 1);
  const detached = () => {
    const data = new Float32Array(n);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    return { data, shape };
  };
  return fc.oneof(
    fc.anything(),
    fc.constantFrom(
      { data: new Float64Array(n), shape },
      { data: new Float32Array(n + 1), shape },
      { data: new Int32Array(n), shape },
      { data: new Float32Array(n), shape: [...shape, 0.5] },
      { data: new Float32Array(n), shape: shape.join(',') },
      { data: new Proxy(new Float32Array(n), {}), shape },
    ),
    fc.constant(null).map(detached),
    fc.array(fc.integer({ min: -2, max: 2 ** 33 }), { maxLength: 5 }).map((s) => ({ data: new Float32Array(n), shape: s })),
  );
}

/** Runs fuzzed bad calls against a module with a cached forward: each works or throws a NormkitError, and one that throws changes nothing. */
function fuzzModule(make: () => Module, x: Tensor, dy: Tensor): void {
  fc.assert(
    fc.property(fc.constantFrom('forward', 'backward', 'loadStateDict'), badTensor(x.shape), (method, arg) => {
      const module = make();
      module.forward(x);
      const before = probe(module, dy);
      try {
        call(module, method, method === 'loadStateDict' ? { ...module.stateDict(), weight: arg } : arg);
      } catch (error) {
        assert.ok(isNormkitError(error), `${method}: not a NormkitError: ${String(error)}`);
        assert.equal(snapshot(module), before.state, `${method} threw and changed the module`);
        assert.deepEqual(probe(module, dy).dx, before.dx, `${method} threw and changed the cached forward`);
      }
    }),
    { numRuns: runs, seed: 27 },
  );
}

describe('fuzz: Linear and FrozenBatchNorm2d', () => {
  it('Linear: bad tensors and state dicts', () => {
    const x = { data: Float32Array.from({ length: 6 }, (_, i) => i - 2), shape: [2, 3] };
    const dy = { data: Float32Array.from({ length: 4 }, (_, i) => i + 1), shape: [2, 2] };
    fuzzModule(() => new Linear(3, 2, { seed: 1 }), x, dy);
  });

  it('FrozenBatchNorm2d: bad tensors and state dicts', () => {
    const x = { data: Float32Array.from({ length: 8 }, (_, i) => i - 3), shape: [1, 2, 2, 2] };
    const dy = { data: Float32Array.from({ length: 8 }, (_, i) => i / 3), shape: [1, 2, 2, 2] };
    fuzzModule(() => new FrozenBatchNorm2d(2, { backend: 'js' }), x, dy);
  });
});

describe('fuzz: safetensors save and the tfjs options', () => {
  it('saveSafetensors: a dict of anything saves (and loads back equal) or throws a NormkitError', () => {
    const value = fc.oneof(
      fc.anything(),
      fc.integer(),
      fc.double(),
      fc.constantFrom(new Float32Array([1, 2]), new Float64Array([3]), Int32Array.of(1), new Uint8Array(2), new Proxy(new Float32Array(1), {}), [1, 2]),
    );
    const key = fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', '__metadata__', 'toString', 'hasOwnProperty'));
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { maxLength: 4 }), (entries) => {
        const state: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
        for (const [k, v] of entries) state[k] = v;
        let bytes: Uint8Array;
        try {
          bytes = saveSafetensors(state as never);
        } catch (error) {
          assert.ok(isNormkitError(error), `not a NormkitError: ${String(error)}`);
          return;
        }
        const loaded = loadSafetensors(bytes);
        assert.deepEqual(Object.keys(loaded).sort(), Object.keys(state).sort());
      }),
      { numRuns: runs * 4, seed: 27 },
    );
  });

  it('batchNormTraining and useNormkit: any options work or throw a NormkitError, the tensors unchanged', async () => {
    const normkit = await useNormkit(tf, { kernels: 'js', onFallback: () => undefined });
    try {
      const x = tf.tensor2d([1, 2, 3, 4, 5, 7], [3, 2]);
      const option = fc.oneof(fc.anything(), fc.double(), fc.integer({ min: -4, max: 4 }), fc.constantFrom(-1, 0, Infinity, Number.NaN, 1e-3));
      const options = fc.oneof(fc.anything(), fc.record({ epsilon: option, axis: option }, { requiredKeys: [] }), fc.dictionary(fc.string(), option, { maxKeys: 2 }));
      fc.assert(
        fc.property(options, (given) => {
          const before = Array.from(x.dataSync());
          try {
            const { y, mean, variance } = normkit.batchNormTraining(x, given as never);
            tf.dispose([y, mean, variance]);
          } catch (error) {
            assert.ok(isNormkitError(error), `not a NormkitError: ${String(error)}`);
          }
          assert.deepEqual(Array.from(x.dataSync()), before);
        }),
        { numRuns: runs * 2, seed: 27 },
      );
      for (const given of fc.sample(fc.oneof(fc.anything(), fc.record({ kernels: fc.anything(), onFallback: fc.anything() }, { requiredKeys: [] })), { numRuns: 30, seed: 27 })) {
        // installed already: a valid call returns the handle; a bad one must be refused first
        try {
          await useNormkit(tf, given as never);
        } catch (error) {
          assert.ok(isNormkitError(error), `useNormkit(${String(given)}): not a NormkitError: ${String(error)}`);
        }
      }
    } finally {
      normkit.restore();
    }
  });
});

describe('read once, check once', () => {
  /** A tensor whose `shape` getter answers `first` once, then `later`. */
  function shifting(data: Float32Array, first: number[], later: number[]): Tensor {
    let reads = 0;
    return {
      data,
      get shape() {
        reads++;
        return reads === 1 ? first : later;
      },
    };
  }

  it('Linear and FrozenBatchNorm2d read x.shape once (a getter that changes gets nowhere)', () => {
    const linear = new Linear(3, 2);
    const y = linear.forward(shifting(new Float32Array(6).fill(1), [2, 3], [6, 1]));
    assert.deepEqual(y.shape, [2, 2]);
    assert.equal(linear.backward({ data: new Float32Array(4).fill(1), shape: [2, 2] }).data.length, 6);
    const frozen = new FrozenBatchNorm2d(2, { backend: 'js' });
    const z = frozen.forward(shifting(new Float32Array(8).fill(1), [1, 2, 2, 2], [2, 1, 2, 2]));
    assert.deepEqual(z.shape, [1, 2, 2, 2]);
  });

  it('loadStateDict: an array-like whose length changes between reads writes nothing', () => {
    for (const make of [() => new BatchNorm1d(4), () => new Linear(2, 2), () => new FrozenBatchNorm2d(4, { backend: 'js' })]) {
      const layer = make();
      const state = layer.stateDict();
      const before = JSON.stringify(snapshot(layer));
      const changing = (values: number[]) => {
        let reads = 0;
        return new Proxy(values, {
          get(target, key, receiver) {
            if (key === 'length') return ++reads === 1 ? target.length : 100;
            return Reflect.get(target, key, receiver) as unknown;
          },
        });
      };
      const input: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(state)) input[key] = typeof value === 'number' ? value : changing(Array.from(value, (v) => v + 1));
      // the last entry fails: every earlier one must stay unwritten
      const keys = Object.keys(input).filter((k) => typeof input[k] !== 'number');
      input[keys[keys.length - 1]] = ['not a number'];
      assert.throws(() => call(layer, 'loadStateDict', input), isNormkitError);
      assert.equal(JSON.stringify(snapshot(layer)), before, `${layer.name}: loadStateDict wrote part of a refused dict`);
      // and one that only lies about its length loads its real values once
      const lying: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(state)) lying[key] = typeof value === 'number' ? value : changing(Array.from(value, (v) => v + 1));
      call(layer, 'loadStateDict', lying);
      const after = layer.stateDict();
      for (const [key, value] of Object.entries(state)) {
        if (typeof value !== 'number') assert.deepEqual(Array.from(after[key] as ArrayLike<number>), Array.from(value.map((v) => v + 1)), key);
      }
    }
  });
});

describe("fuzz: the CLI's numeric flags", () => {
  const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const bad = ['0', '-1', '1e9', '1.5', 'NaN', 'Infinity', '-Infinity', '', 'abc', '1e400', '99999999999999999999'];
  const flags: [string, string[]][] = [
    ['--cases', ['gradcheck']],
    ['--seed', ['gradcheck']],
    ['--reps', ['bench', '--no-peers', '--no-webgpu']],
    ['--threads', ['bench', '--no-peers', '--no-webgpu']],
    ['--loads', ['bench', '--browser', '--no-peers']],
    ['--steps', ['demo', 'mnist']],
    ['--every', ['demo', 'mnist']],
    ['--lr', ['demo', 'mnist']],
    ['--workers', ['demo', 'mnist']],
  ];
  it('each bad value is one line and exit 2, within seconds', () => {
    const random = fc.sample(fc.constantFrom(...bad), { numRuns: bad.length * 3, seed: 27 });
    for (const [k, [flag, command]] of flags.entries()) {
      // any integer in range is a seed: those get values that are never one
      const values = flag === '--seed' ? ['1.5', 'NaN', '1e10', 'abc'] : [...new Set([random[k], random[k + flags.length], '1e9', 'Infinity'])];
      for (const value of values) {
        const run = spawnSync(process.execPath, [cli, ...command, `${flag}=${value}`], { encoding: 'utf8', timeout: 20_000 });
        const output = `${run.stdout}${run.stderr}`.trim();
        assert.equal(run.status, 2, `normkit ${command.join(' ')} ${flag}=${value}: exit ${String(run.status)} (${run.signal ?? 'no signal'}):\n${output}`);
        assert.equal(output.split('\n').length, 1, output);
        assert.doesNotMatch(output, /internal error/);
        assert.match(output, new RegExp(flag));
      }
    }
  });
});
