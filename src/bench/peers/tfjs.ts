/**
 * TensorFlow.js peers (dev dependencies, loaded when installed): the cpu backend and the wasm backend.
 * They run channels-last, tfjs's native layout; LayerNorm is tf.layers.layerNormalization, GroupNorm is
 * built from tfjs ops (tfjs has none).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { toChannelsFirst, toChannelsLast } from '../../core/transpose.js';
import type { BenchData, Op, Prepared, ShapeSpec, System } from '../types.js';

export type Tf = typeof import('@tensorflow/tfjs');
type TfTensor = import('@tensorflow/tfjs').Tensor;

/** Loads tfjs on a backend with console.log silenced: in Node it prints an advertisement for tfjs-node. */
export async function loadTf(backend: 'cpu' | 'wasm'): Promise<Tf> {
  const log = console.log;
  console.log = () => undefined;
  try {
    const tf = await import('@tensorflow/tfjs');
    if (backend === 'wasm') {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const require = createRequire(import.meta.url);
      wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'))}/dist/`);
    }
    await tf.setBackend(backend);
    await tf.ready();
    return tf;
  } finally {
    console.log = log;
  }
}

/** The channels-last shape of a logical channels-first one. */
export function nhwc(shape: readonly number[]): number[] {
  return shape.length > 2 ? [shape[0], ...shape.slice(2), shape[1]] : [...shape];
}

/** The training-mode normalization as a tfjs function: from ops, or (layers) tf.layers.layerNormalization. */
function normalizer(tf: Tf, spec: ShapeSpec, gamma: TfTensor, beta: TfTensor, eps: number, layers: boolean): (x: TfTensor) => TfTensor {
  if (layers) {
    const layer = tf.layers.layerNormalization({ axis: -1, epsilon: eps });
    layer.build([null, gamma.shape[0]]);
    layer.setWeights([gamma, beta]);
    return (x) => layer.apply(x) as TfTensor;
  }
  return (x) => normalize(tf, spec, x, gamma, beta, eps);
}

function normalize(tf: Tf, spec: ShapeSpec, x: TfTensor, gamma: TfTensor, beta: TfTensor, eps: number): TfTensor {
  const rank = x.shape.length;
  if (spec.norm === 'batch') {
    const { mean, variance } = tf.moments(x, Array.from({ length: rank - 1 }, (_, i) => i));
    return tf.batchNorm(x, mean, variance, beta, gamma, eps);
  }
  if (spec.norm === 'layer') {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  }
  // GroupNorm: [N, ...P, C] -> [N, P, G, C/G], statistics over P and C/G
  const groups = spec.groups ?? 1;
  const [n] = x.shape;
  const c = x.shape[rank - 1];
  const grouped = tf.reshape(x, [n, -1, groups, c / groups]);
  const { mean, variance } = tf.moments(grouped, [1, 3], true);
  const xhat = tf.reshape(tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, eps))), x.shape);
  return tf.add(tf.mul(xhat, gamma), beta);
}

/** How tfjs is loaded on a backend: in Node.js (below), or by a browser page (bench/browser/page.ts), which also says its thread count. */
export interface TfLoader {
  readonly load: (backend: 'cpu' | 'wasm') => Promise<Tf>;
  readonly threads: number;
}

const nodeLoader: TfLoader = { load: loadTf, threads: 1 };

/** tfjs on one backend; `layers`: LayerNorm through tf.layers.layerNormalization (much slower than the ops here). */
export function tfjsSystem(backend: 'cpu' | 'wasm', layers = false, loader: TfLoader = nodeLoader): System {
  return {
    name: `tfjs-${backend}${layers ? '-layers' : ''}`,
    threads: loader.threads,
    layout: 'channels-last',
    supports: (spec) => spec.layout === 'channels-first' && (!layers || spec.norm === 'layer'),
    prepare: async (data: BenchData): Promise<Prepared> => {
      const tf = await loader.load(backend);
      const { spec } = data;
      const shape = nhwc(spec.shape);
      const x = tf.tensor(toChannelsLast(data.x, spec.shape).data, shape);
      const dy = tf.tensor(toChannelsLast(data.dy, spec.shape).data, shape);
      const gamma = tf.tensor1d(data.weight);
      const beta = tf.tensor1d(data.bias);
      const mean = tf.tensor1d(data.runningMean);
      const variance = tf.tensor1d(data.runningVar);
      const norm = normalizer(tf, spec, gamma, beta, data.eps, layers);
      const gradOf = tf.grads((input: TfTensor) => tf.sum(tf.mul(norm(input), dy)));
      const outputs: Partial<Record<Op, () => Float32Array>> = {
        forward: () => tf.tidy(() => norm(x)).dataSync() as Float32Array,
        'forward+backward': () => tf.tidy(() => gradOf([x])[0]).dataSync() as Float32Array,
      };
      if (spec.norm === 'batch') outputs.inference = () => tf.tidy(() => tf.batchNorm(x, mean, variance, beta, gamma, data.eps)).dataSync() as Float32Array;
      const run: Partial<Record<Op, () => unknown>> = {};
      for (const [op, fn] of Object.entries(outputs) as [Op, () => Float32Array][]) run[op] = fn;
      // tfjs's backend is global and the systems run interleaved: switch back to ours, untimed, before each sample
      const ensureBackend = async () => {
        if (tf.getBackend() !== backend) await tf.setBackend(backend);
      };
      return {
        run,
        beforeSample: ensureBackend,
        result: async (op) => {
          await ensureBackend();
          return Float32Array.from(toChannelsFirst(outputs[op]?.() ?? new Float32Array(0), shape).data);
        },
        dispose: () => {
          tf.dispose([x, dy, gamma, beta, mean, variance]);
        },
      };
    },
  };
}
