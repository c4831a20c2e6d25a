/**
 * TensorFlow.js with normkit installed (`useNormkit`, normkit/tfjs) on its cpu and wasm backends, beside
 * the stock tfjs rows: channels last as they run; forward is the fused training op
 * (handle.batchNormTraining: what tf.layers.batchNormalization's training path runs, less the
 * moving-average update), forward+backward its tf.grads, inference tf.batchNorm. normkit's kernels run on
 * one thread, as tfjs's do. tfjs's kernel registry is global, so normkit is installed before each sample
 * and removed after it: the stock rows, timed in the same rounds, run tfjs's own kernels.
 */
import { toChannelsFirst, toChannelsLast } from '../../core/transpose.js';
import { setWasmPool } from '../../kernels/wasm/backend.js';
import type { NormkitTfjs } from '../../tfjs/index.js';
import { useNormkit } from '../../tfjs/index.js';
import type { BenchData, Op, Prepared, System } from '../types.js';
import { loadTf, nhwc } from './tfjs.js';

type TfTensor = import('@tensorflow/tfjs').Tensor;

export function tfjsNormkitSystem(backend: 'cpu' | 'wasm'): System {
  return {
    name: `tfjs-${backend}+normkit`,
    threads: 1,
    layout: 'channels-last',
    supports: (spec) => spec.norm === 'batch' && spec.layout === 'channels-first',
    prepare: async (data: BenchData): Promise<Prepared> => {
      const tf = await loadTf(backend);
      const shape = nhwc(data.spec.shape);
      const x = tf.tensor(toChannelsLast(data.x, data.spec.shape).data, shape);
      const dy = tf.tensor(toChannelsLast(data.dy, data.spec.shape).data, shape);
      const [gamma, beta, mean, variance] = [data.weight, data.bias, data.runningMean, data.runningVar].map((v) => tf.tensor1d(v));
      let handle: NormkitTfjs | null = null;
      const install = async () => {
        if (tf.getBackend() !== backend) await tf.setBackend(backend);
        handle ??= await useNormkit(tf);
        setWasmPool(null);
      };
      const uninstall = () => {
        handle?.restore();
        handle = null;
      };
      const train = (input: TfTensor): TfTensor => {
        if (handle === null) throw new Error('normkit is not installed');
        return handle.batchNormTraining(input, { scale: gamma, offset: beta, epsilon: data.eps }).y;
      };
      const gradOf = tf.grads((input: TfTensor) => tf.sum(tf.mul(train(input), dy)));
      const outputs: Partial<Record<Op, () => Float32Array>> = {
        forward: () => tf.tidy(() => train(x)).dataSync() as Float32Array,
        'forward+backward': () => tf.tidy(() => gradOf([x])[0]).dataSync() as Float32Array,
        inference: () => tf.tidy(() => tf.batchNorm(x, mean, variance, beta, gamma, data.eps)).dataSync() as Float32Array,
      };
      const run: Partial<Record<Op, () => unknown>> = { ...outputs };
      return {
        run,
        beforeSample: install,
        afterSample: uninstall,
        result: async (op) => {
          await install();
          try {
            return Float32Array.from(toChannelsFirst(outputs[op]?.() ?? new Float32Array(0), shape).data);
          } finally {
            uninstall();
          }
        },
        dispose: () => {
          uninstall();
          tf.dispose([x, dy, gamma, beta, mean, variance]);
        },
      };
    },
  };
}

