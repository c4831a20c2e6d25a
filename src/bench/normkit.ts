/** normkit's own backends as benchmark systems: js, wasm on one thread, wasm threaded, wasm with data resident in wasm memory, webgpu with copies. */
import type { Layout } from '../core/layout.js';
import { statsCount } from '../core/layout.js';
import { backends } from '../kernels/index.js';
import type { NormKernels } from '../kernels/contract.js';
import { freeWasmTensor, setWasmPool, wasmTensor } from '../kernels/wasm/backend.js';
import type { WorkerPool } from '../kernels/wasm/pool.js';
import type { FloatArray } from '../core/float.js';
import { physicalOf, runningStats } from './expected.js';
import type { BenchData, Op, Prepared, System } from './types.js';

interface Options {
  readonly name: string;
  readonly kernels: NormKernels;
  readonly threads: number;
  /** The pool to install before each call (null: one thread); undefined for backends without one. */
  readonly pool?: WorkerPool | null;
  /** Keep every array in wasm memory (no copies). */
  readonly resident: boolean;
}

function normkitSystem(options: Options, layout: Layout): System {
  return {
    name: options.name,
    threads: options.threads,
    layout,
    supports: (spec) => spec.layout === layout,
    prepare: (data: BenchData) => {
      const { spec } = data;
      const { view, arrange, back } = physicalOf(spec);
      const fresh = (source?: Float32Array): FloatArray => {
        if (!options.resident) return source === undefined ? new Float32Array(data.x.length) : arrange(source);
        const t = wasmTensor('float32', spec.shape).data;
        if (source !== undefined) t.set(arrange(source));
        return t;
      };
      const [x, dy, y, dx] = [fresh(data.x), fresh(data.dy), fresh(), fresh()];
      const count = statsCount(view);
      const [mean, variance, rstd] = [new Float64Array(count), new Float64Array(count), new Float64Array(count)];
      const dweight = new Float32Array(data.weight.length);
      const dbias = new Float32Array(data.bias.length);
      const running = runningStats(data, view);
      const k = options.kernels;
      const threads = () => {
        if (options.pool !== undefined) setWasmPool(options.pool);
      };
      const forward = () => {
        k.forwardTrain(y, x, view, data.weight, data.bias, data.eps, mean, variance, rstd);
      };
      const backward = () => {
        k.backward(dx, dweight, dbias, dy, x, view, data.weight, mean, rstd, true);
      };
      threads();
      forward();
      const run: Partial<Record<Op, () => unknown>> = {
        forward: () => {
          threads();
          forward();
        },
        backward: () => {
          threads();
          backward();
        },
        'forward+backward': () => {
          threads();
          forward();
          backward();
        },
      };
      if (spec.norm === 'batch') {
        run.inference = () => {
          threads();
          k.forwardWithStats(y, x, view, data.weight, data.bias, running.mean, running.rstd);
        };
      }
      return Promise.resolve({
        run,
        result: (op: Op) => {
          run[op]?.();
          return back(op === 'forward' || op === 'inference' ? y : dx);
        },
        dispose: () => {
          if (options.resident) for (const a of [x, dy, y, dx]) freeWasmTensor({ data: a, shape: spec.shape });
        },
      } satisfies Prepared);
    },
  };
}

/**
 * Every normkit system for both layouts; `pool` is the started worker pool (null when threads are off);
 * `webgpu`: whether the synchronous webgpu backend is started (it copies to and from the GPU on every call).
 */
export function normkitSystems(pool: WorkerPool | null, webgpu: boolean): System[] {
  const systems: System[] = [];
  for (const layout of ['channels-first', 'channels-last'] as const) {
    if (webgpu) systems.push(normkitSystem({ name: 'normkit-webgpu', kernels: backends.webgpu, threads: 1, resident: false }, layout));
    systems.push(normkitSystem({ name: 'normkit-js', kernels: backends.js, threads: 1, resident: false }, layout));
    systems.push(normkitSystem({ name: 'normkit-wasm', kernels: backends.wasm, threads: 1, pool: null, resident: false }, layout));
    if (pool !== null) {
      systems.push(normkitSystem({ name: 'normkit-wasm', kernels: backends.wasm, threads: pool.threads, pool, resident: false }, layout));
      systems.push(normkitSystem({ name: 'normkit-wasm-resident', kernels: backends.wasm, threads: pool.threads, pool, resident: true }, layout));
    } else {
      systems.push(normkitSystem({ name: 'normkit-wasm-resident', kernels: backends.wasm, threads: 1, pool: null, resident: true }, layout));
    }
  }
  return systems;
}
