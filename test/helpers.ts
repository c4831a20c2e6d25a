// Shared test helpers: fixture loading, random tensors, state snapshots, bad-input checks.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FixtureFile } from '../src/io/fixtures.ts';
import { parseFixtures } from '../src/io/fixtures.ts';
import { NormkitError } from '../src/errors.ts';
import { DEFAULT_PARALLEL_MIN, setParallelMin } from '../src/kernels/wasm/backend.ts';
import { startWasmThreads, stopWasmThreads } from '../src/node/wasm-threads.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import type { Normalization } from '../src/nn/normalization.ts';
import { Random } from '../src/random.ts';
import type { DType, FloatArray, Tensor } from '../src/tensor.ts';
import { allocate } from '../src/tensor.ts';

export const fixtureDir = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const fixtureFiles = ['pytorch-batchnorm.json', 'pytorch-norms.json', 'variants.json'] as const;

export function loadFixtures(name: string): FixtureFile {
  return parseFixtures(readFileSync(fixtureDir + name, 'utf8'), name);
}

export function randomTensor(random: Random, shape: readonly number[], dtype: DType = 'float64', mean = 0, std = 1): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const data = allocate(dtype, n);
  data.set(random.normals(n, mean, std));
  return { data, shape: [...shape] };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Deep copy of everything observable in a layer: state dict, grads. */
export function snapshot(layer: { stateDict(): Record<string, FloatArray | number>; parameters(): { grad: FloatArray }[] }): string {
  const state = Object.entries(layer.stateDict()).map(([k, v]) => [k, typeof v === 'number' ? v : Array.from(v)]);
  return JSON.stringify({ state, grads: layer.parameters().map((p) => Array.from(p.grad)) });
}

export { Random };

/** A trained layer with non-trivial state, gradients and a cached forward. */
export function trainedBatchNorm(): { bn: BatchNorm2d; dy: Tensor } {
  const random = new Random(1);
  const bn = new BatchNorm2d(3);
  for (let i = 0; i < 3; i++) {
    bn.forward(randomTensor(random, [2, 3, 2, 2], 'float32', i, 2));
    bn.backward(randomTensor(random, [2, 3, 2, 2], 'float32'));
  }
  return { bn, dy: randomTensor(random, [2, 3, 2, 2], 'float32') };
}

/**
 * Runs `action`, which must throw a NormkitError with `code` and a message matching `message`, and checks
 * that the layer (state, gradients, cached forward: the next backward of `dy`) and every array in
 * `owned` (the caller's outputs) are as they were.
 */
export function expectUnchanged(layer: Normalization, dy: Tensor | null, action: () => unknown, code: string, message: RegExp, owned: readonly FloatArray[] = []): void {
  const ownedBefore = owned.map((a) => Array.from(a));
  const before = snapshot(layer);
  const dxBefore = dy && Array.from(layer.backward(dy).data);
  const afterProbe = snapshot(layer);
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof NormkitError, `not a NormkitError: ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
  assert.equal(snapshot(layer), afterProbe, 'state changed');
  owned.forEach((a, i) => {
    assert.deepEqual(Array.from(a), ownedBefore[i], 'a caller-owned array changed');
  });
  if (dy && dxBefore) {
    // the cached forward is the one from before the failed call
    assert.deepEqual(Array.from(layer.backward(dy).data), dxBefore);
  } else {
    assert.equal(snapshot(layer), before);
  }
}

export const f32 = (shape: number[], fill = 1): Tensor => ({ data: new Float32Array(shape.reduce((p, d) => p * d, 1)).fill(fill), shape });


/**
 * Registers before/after hooks of the enclosing describe: a pool of two wasm threads that takes inputs from
 * `parallelMin` elements (the default keeps moderate shapes on one thread), then the default again.
 */
export function onTwoThreads(parallelMin: number): void {
  before(async () => {
    assert.equal(await startWasmThreads(2), 2);
    setParallelMin(parallelMin);
  });
  after(async () => {
    setParallelMin(DEFAULT_PARALLEL_MIN);
    await stopWasmThreads();
  });
}
