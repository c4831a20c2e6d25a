/** onnxruntime-node as a peer (dev dependency, loaded when installed): BatchNormalization, inference and training mode, NCHW. */
import type { BenchData, Op, Prepared, System } from '../types.js';
import { batchNormModel } from './onnx-model.js';

export function onnxSystem(threads: number): System {
  return {
    name: 'onnxruntime-node',
    threads,
    layout: 'channels-first',
    supports: (spec) => spec.norm === 'batch' && spec.layout === 'channels-first',
    prepare: async (data: BenchData): Promise<Prepared> => {
      const ort = await import('onnxruntime-node');
      const { shape } = data.spec;
      const options = { intraOpNumThreads: threads, interOpNumThreads: 1 };
      const [train, infer] = await Promise.all([
        batchNormModel(shape, data.eps, true).then((model) => ort.InferenceSession.create(model.bytes, options)),
        batchNormModel(shape, data.eps, false).then((model) => ort.InferenceSession.create(model.bytes, options)),
      ]);
      const c = shape[1];
      const feeds = {
        X: new ort.Tensor('float32', data.x, [...shape]),
        scale: new ort.Tensor('float32', data.weight, [c]),
        B: new ort.Tensor('float32', data.bias, [c]),
        input_mean: new ort.Tensor('float32', data.runningMean, [c]),
        input_var: new ort.Tensor('float32', data.runningVar, [c]),
      };
      const y = async (session: typeof train): Promise<Float32Array> => {
        const out = await session.run(feeds);
        const data32 = (out.Y as (typeof out)[string] | undefined)?.data;
        return data32 instanceof Float32Array ? data32 : new Float32Array(0);
      };
      const run: Partial<Record<Op, () => unknown>> = { forward: () => y(train), inference: () => y(infer) };
      return {
        run,
        result: (op) => (op === 'inference' ? y(infer) : y(train)),
        dispose: () => {
          void train.release();
          void infer.release();
        },
      };
    },
  };
}
