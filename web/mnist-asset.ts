// Emits mnist.bin for the tfjs GPU demo page: the first PER_DIGIT digits of each class from the `mnist`
// package (a dependency), one byte per pixel (round(255*v)), class 0's images first. 2.4 MB instead of its 21 MB of JSON.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plugin } from 'vite';
import { PIXELS, mnistDir } from '../src/demo/data.ts';
import { PER_DIGIT } from './src/mnist-format.ts';

function encode(): Uint8Array {
  const out = new Uint8Array(10 * PER_DIGIT * PIXELS);
  for (let digit = 0; digit < 10; digit++) {
    const { data } = JSON.parse(readFileSync(join(mnistDir(), 'src', 'digits', `${digit}.json`), 'utf8')) as { data: number[] };
    for (let i = 0; i < PER_DIGIT * PIXELS; i++) out[digit * PER_DIGIT * PIXELS + i] = Math.round(255 * data[i]);
  }
  return out;
}

export function mnistAsset(): Plugin {
  return {
    name: 'normkit-mnist-asset',
    apply: 'build',
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: 'mnist.bin', source: encode() });
    },
  };
}
