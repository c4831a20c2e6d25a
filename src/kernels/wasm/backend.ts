/**
 * The wasm backend behind the kernel contract: checks and stages the call's arrays (staging.ts), takes
 * the cached plan for the view (plan.ts), and runs group mode (one statistics group at a time, hot in
 * cache) or row mode (rows.ts: rows of G*B contiguous columns, for channels-last and BatchNorm1d),
 * spread over the worker pool for large inputs.
 * View letters: A blocks, S span, G groups, B run, K affine entries per group, M = S*B.
 */
import type { NormView } from '../../core/layout.js';
import { affineSize, statsCount } from '../../core/layout.js';
import type { DType, FloatArray } from '../../tensor.js';
import { dtypeOf } from '../../tensor.js';
import { NormkitError } from '../../errors.js';
import type { NormKernels } from '../types.js';
import type { Job } from './module.js';
import type { Plan } from './plan.js';
import { planFor } from './plan.js';
import { addPartials, lanesHold, rowsBackward, rowsForwardTrain, rowsNormalize } from './rows.js';
import type { Wanted } from './staging.js';
import { staged } from './staging.js';
import type { State } from './state.js';
import { ready, runJobs } from './state.js';

export { wasmAvailable, wasmReady, wasmShared, setWasmPool, wasmThreads, wasmPool, runWasmJobs } from './state.js';
export { wasmTensor, freeWasmTensor, residentTensor, setResidentBudget, wasmMemory } from './resident.js';

/** Below this many elements one thread is faster than waking the others (measured: shape B, 262K, ran slower on 2). */
let parallelMin = 1 << 19;

/** Sets the size from which calls use the worker pool (tests lower it to run the threaded paths on moderate shapes). */
export function setParallelMin(elements: number): void {
  parallelMin = elements;
}

/** The kernels index memory by the view: its sizes must be positive integers with K dividing B, and the elements fit i32 offsets. */
function checkView(view: NormView): void {
  const { outer, span, groups, inner, affinePerGroup } = view;
  const sizes = [outer, span, groups, inner, affinePerGroup];
  if (!sizes.every((d) => Number.isSafeInteger(d) && d > 0) || inner % affinePerGroup !== 0 || outer * span * groups * inner > 2 ** 31) {
    throw new NormkitError('shape', `wasm backend: a view needs positive integer sizes (at most 2^31 elements) with affinePerGroup dividing inner, got ${JSON.stringify(view)}`);
  }
}

function setup(view: NormView, x: FloatArray): { s: State; p: Plan; dtype: DType; n: number } {
  checkView(view);
  const s = ready();
  const n = view.outer * view.span * view.groups * view.inner;
  // the dtype the caller's array really has decides the kernels (staging checks every array against it)
  const dtype = dtypeOf(x);
  const parts = s.pool !== null && n >= parallelMin ? s.pool.threads : 1;
  return { s, p: planFor(s, view, dtype, parts), dtype, n };
}

/** The float64 statistics arrays of a call, checked (A*G values each) and used by the host only. */
function statistics(count: number, arrays: { mean: Float64Array; rstd: Float64Array; variance?: Float64Array }): Wanted[] {
  const stat = (array: Float64Array, what: string): Wanted => ({ array, length: count, what, role: 'host', dtype: 'float64' });
  return arrays.variance === undefined ? [stat(arrays.mean, 'mean'), stat(arrays.rstd, 'rstd')] : [stat(arrays.mean, 'mean'), stat(arrays.variance, 'variance'), stat(arrays.rstd, 'rstd')];
}

/** What both forwards stage: x in, y out, and the affine parameters of `k` entries. */
function forwardArrays(y: FloatArray, x: FloatArray, n: number, weight: FloatArray | null, bias: FloatArray | null, k: number): Wanted[] {
  return [
    { array: x, length: n, what: 'x' },
    { array: y, length: n, what: 'y', role: 'output' },
    { array: weight, length: k, what: 'weight' },
    { array: bias, length: k, what: 'bias' },
  ];
}

export const wasmKernels: NormKernels = {
  name: 'wasm',
  dtypes: ['float32', 'float64'],
  forwardTrain(y, x, view, weight, bias, eps, mean, variance, rstd) {
    const { s, p, dtype, n } = setup(view, x);
    const count = statsCount(view);
    const wanted = [...forwardArrays(y, x, n, weight, bias, affineSize(view)), ...statistics(count, { mean, variance, rstd })];
    staged(s.arena, dtype, wanted, ([px, py, pw, pb]) => {
      if (p.groupMode) {
        const { span: S, groups: G, inner: B, affinePerGroup: K } = view;
        const fn = p.f32 ? 'group_forward_f32' : 'group_forward_f64';
        runJobs(s, p.ranges.map(([q0, q1]): Job => ({ fn, args: [py, px, S, G, B, K, pw, pb, eps, p.mean, p.variance, p.rstd, 1, q0, q1, p.fast ? 1 : 0] })));
      } else {
        rowsForwardTrain(s, p, py, px, pw, pb, eps, variance, rstd);
      }
    });
    s.arena.readF64(p.mean, mean, count);
    s.arena.readF64(p.variance, variance, count);
    s.arena.readF64(p.rstd, rstd, count);
  },

  forwardWithStats(y, x, view, weight, bias, mean, rstd) {
    const { s, p, dtype, n } = setup(view, x);
    const count = statsCount(view);
    const wanted = [...forwardArrays(y, x, n, weight, bias, affineSize(view)), ...statistics(count, { mean, rstd })];
    staged(s.arena, dtype, wanted, ([px, py, pw, pb]) => {
      s.arena.writeF64(p.mean, mean, count);
      s.arena.writeF64(p.rstd, rstd, count);
      if (p.groupMode) {
        const { span: S, groups: G, inner: B, affinePerGroup: K } = view;
        if (p.rowRanges !== null) {
          const fn = p.f32 ? 'group_normalize_rows_f32' : 'group_normalize_rows_f64';
          runJobs(s, p.rowRanges.map(([r0, r1]): Job => ({ fn, args: [py, px, S, G, B, K, pw, pb, p.mean, p.rstd, r0, r1, p.fast ? 1 : 0] })));
        } else {
          const fn = p.f32 ? 'group_forward_f32' : 'group_forward_f64';
          runJobs(s, p.ranges.map(([q0, q1]): Job => ({ fn, args: [py, px, S, G, B, K, pw, pb, 0, p.mean, 0, p.rstd, 0, q0, q1, p.fast ? 1 : 0] })));
        }
      } else {
        rowsNormalize(s, p, p.fast && lanesHold(null, rstd, count), py, px, pw, pb);
      }
    });
  },

  backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, batchStats) {
    const { s, p, dtype, n } = setup(view, x);
    const k = affineSize(view);
    const count = statsCount(view);
    const wanted: Wanted[] = [
      { array: x, length: n, what: 'x' },
      { array: dy, length: n, what: 'dy' },
      { array: dx, length: n, what: 'dx', role: 'output' },
      { array: weight, length: k, what: 'weight' },
      // written from the float64 sums
      { array: dweight, length: k, what: 'dweight', role: 'host' },
      { array: dbias, length: k, what: 'dbias', role: 'host' },
      ...statistics(count, { mean, rstd }),
    ];
    staged(s.arena, dtype, wanted, ([px, pdy, pdx, pw]) => {
      s.arena.writeF64(p.mean, mean, count);
      s.arena.writeF64(p.rstd, rstd, count);
      if (p.groupMode) {
        const { span: S, groups: G, inner: B, affinePerGroup: K } = view;
        s.arena.zeroF64(p.partials1, (p.stride / 8) * p.ranges.length);
        s.arena.zeroF64(p.partials2, (p.stride / 8) * p.ranges.length);
        const fn = p.f32 ? 'group_backward_f32' : 'group_backward_f64';
        const batch = batchStats ? 1 : 0;
        runJobs(s, p.ranges.map(([q0, q1], t): Job => ({ fn, args: [pdx, pdy, px, S, G, B, K, pw, p.mean, p.rstd, batch, p.partials1 + t * p.stride, p.partials2 + t * p.stride, q0, q1, p.fast ? 1 : 0] })));
        addPartials(s, p);
        if (dweight !== null) s.arena.readF64(p.partials1, dweight, k);
        if (dbias !== null) s.arena.readF64(p.partials2, dbias, k);
      } else {
        rowsBackward(s, p, p.fast && lanesHold(null, rstd, count), pdx, pdy, px, pw, batchStats);
        if (dweight !== null) s.arena.readF64(p.dweight, dweight, k);
        if (dbias !== null) s.arena.readF64(p.dbias, dbias, k);
      }
    });
  },
};
