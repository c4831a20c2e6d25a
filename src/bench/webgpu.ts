/**
 * The webgpu backend as benchmark systems: `normkit-webgpu` through the synchronous contract
 * (upload, run, download on every call) and `normkit-webgpu-resident` on GPU-resident tensors,
 * timed until the GPU has finished (onSubmittedWorkDone).
 */
import type { Layout } from '../core/layout.js';
import { affineSize, statsCount } from '../core/layout.js';
import { toChannelsFirst, toChannelsLast } from '../core/transpose.js';
import type { WebGpuNorm } from '../kernels/webgpu/engine.js';
import { viewOf } from './expected.js';
import type { BenchData, Op, Prepared, System } from './types.js';

function residentSystem(engine: WebGpuNorm, layout: Layout): System {
  return {
    name: 'normkit-webgpu-resident',
    threads: 1,
    layout,
    supports: (spec) => spec.layout === layout,
    prepare: (data: BenchData) => {
      const { spec } = data;
      const last = spec.layout === 'channels-last' && spec.norm !== 'layer';
      const physical = last ? [spec.shape[0], ...spec.shape.slice(2), spec.shape[1]] : spec.shape;
      const view = viewOf({ ...spec, shape: physical });
      const arrange = (a: Float32Array): Float32Array => (last ? Float32Array.from(toChannelsLast(a, spec.shape).data) : a);
      const n = data.x.length;
      const k = affineSize(view);
      const count = statsCount(view);
      const [x, dy, weight, bias] = [arrange(data.x), arrange(data.dy), data.weight, data.bias].map((a) => engine.tensor(a));
      const [y, dx, dweight, dbias] = [engine.tensor(n), engine.tensor(n), engine.tensor(k), engine.tensor(k)];
      const stats = engine.stats(count);
      const running = engine.stats({
        mean: Float64Array.from({ length: count }, (_, q) => data.runningMean[q % view.groups] ?? 0),
        rstd: Float64Array.from({ length: count }, (_, q) => 1 / Math.sqrt((data.runningVar[q % view.groups] ?? 1) + data.eps)),
      });
      const forward = () => {
        engine.forwardTrain(y, x, view, weight, bias, data.eps, stats);
      };
      const backward = () => {
        engine.backward(dx, dweight, dbias, dy, x, view, weight, stats, true);
      };
      forward();
      const run: Partial<Record<Op, () => Promise<void>>> = {
        forward: () => {
          forward();
          return engine.finish();
        },
        backward: () => {
          backward();
          return engine.finish();
        },
        'forward+backward': () => {
          forward();
          backward();
          return engine.finish();
        },
      };
      if (spec.norm === 'batch') {
        run.inference = () => {
          engine.forwardWithStats(y, x, view, weight, bias, running);
          return engine.finish();
        };
      }
      return Promise.resolve({
        run,
        result: async (op: Op) => {
          await run[op]?.();
          const values = await engine.read(op === 'forward' || op === 'inference' ? y : dx);
          return last ? Float32Array.from(toChannelsFirst(values, physical).data) : values;
        },
        dispose: () => {
          for (const t of [x, dy, weight, bias, y, dx, dweight, dbias, stats, running]) t.buffer.destroy();
        },
      } satisfies Prepared);
    },
  };
}

/** The GPU-resident systems for both layouts on `engine`. */
export function webgpuResidentSystems(engine: WebGpuNorm): System[] {
  return (['channels-first', 'channels-last'] as const).map((layout) => residentSystem(engine, layout));
}
