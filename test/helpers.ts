// Shared test helpers: fixture loading, random tensors, state snapshots.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FixtureFile } from '../src/io/fixtures.ts';
import { parseFixtures } from '../src/io/fixtures.ts';
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
