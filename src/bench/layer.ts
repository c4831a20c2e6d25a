/**
 * The default layer path as a benchmark system (`normkit-layer`): a layer built with default options
 * (the wasm backend where it runs), inputs from tensor(), outputs disposed after each call as `using`
 * would; what a user who picks a layer and calls it gets.
 */
import type { Layout } from '../core/layout.js';
import { setWasmPool } from '../kernels/wasm/state.js';
import type { WorkerPool } from '../kernels/wasm/pool.js';
import { BatchNorm1d, BatchNorm2d } from '../nn/batchnorm.js';
import { GroupNorm } from '../nn/groupnorm.js';
import { LayerNorm } from '../nn/layernorm.js';
import type { Normalization } from '../nn/normalization.js';
import type { OwnedTensor } from '../tensor.js';
import { tensor } from '../tensor.js';
import { physicalOf } from './expected.js';
import type { BenchData, Op, Prepared, ShapeSpec, System } from './types.js';

function makeLayer(spec: ShapeSpec, layout: Layout): Normalization {
  const channels = spec.shape[1];
  if (spec.norm === 'layer') return new LayerNorm([spec.shape[spec.shape.length - 1]]);
  if (spec.norm === 'group') return new GroupNorm(spec.groups ?? 1, channels, { layout });
  return spec.shape.length === 2 ? new BatchNorm1d(channels, { layout }) : new BatchNorm2d(channels, { layout });
}

function layerSystem(threads: number, pool: WorkerPool | null, layout: Layout): System {
  return {
    name: 'normkit-layer',
    threads,
    layout,
    supports: (spec) => spec.layout === layout,
    prepare: (data: BenchData) => {
      const { spec } = data;
      const { arrange, back } = physicalOf(spec);
      const last = layout === 'channels-last' && spec.norm !== 'layer';
      const shape = last ? [spec.shape[0], ...spec.shape.slice(2), spec.shape[1]] : [...spec.shape];
      const affine = { weight: data.weight, bias: data.bias };
      const train = makeLayer(spec, layout);
      train.loadStateDict(spec.norm === 'batch' ? { ...affine, running_mean: data.runningMean, running_var: data.runningVar, num_batches_tracked: 0 } : affine);
      const infer = makeLayer(spec, layout).eval();
      infer.loadStateDict(spec.norm === 'batch' ? { ...affine, running_mean: data.runningMean, running_var: data.runningVar, num_batches_tracked: 0 } : affine);
      const x = tensor(arrange(data.x), shape);
      const dy = tensor(arrange(data.dy), shape);
      const use = (t: OwnedTensor, keep: boolean): Float32Array | null => {
        const out = keep ? back(t.data) : null;
        t.dispose();
        return out;
      };
      const step: Record<Op, (keep: boolean) => Float32Array | null> = {
        forward: (keep) => use(train.forward(x), keep),
        backward: (keep) => use(train.backward(dy), keep),
        'forward+backward': (keep) => {
          use(train.forward(x), false);
          return use(train.backward(dy), keep);
        },
        inference: (keep) => use(infer.forward(x), keep),
      };
      const calls = (op: Op) => () => {
        setWasmPool(pool);
        step[op](false);
      };
      step.forward(false);
      const run: Partial<Record<Op, () => unknown>> = { forward: calls('forward'), backward: calls('backward'), 'forward+backward': calls('forward+backward') };
      if (spec.norm === 'batch') run.inference = calls('inference');
      return Promise.resolve({
        run,
        result: (op: Op) => {
          setWasmPool(pool);
          if (op === 'backward') step.forward(false);
          return step[op](true) ?? new Float32Array(0);
        },
        dispose: () => {
          x.dispose();
          dy.dispose();
        },
      } satisfies Prepared);
    },
  };
}

/** The layer path on one thread and on the pool (null: one thread only), for both layouts. */
export function layerSystems(pool: WorkerPool | null): System[] {
  return (['channels-first', 'channels-last'] as const).flatMap((layout) => [layerSystem(1, null, layout), ...(pool === null ? [] : [layerSystem(pool.threads, pool, layout)])]);
}
