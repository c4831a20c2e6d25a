/**
 * The wasm backend behind the kernel contract: checks and stages the call's arrays (staging.ts), takes
 * the cached plan for the view (plan.ts), and runs group mode (one statistics group at a time, hot in
 * cache) or row mode (rows.ts: rows of G*B contiguous columns, for channels-last and BatchNorm1d),
 * spread over the worker pool for large inputs.
 * View letters: A blocks, S span, G groups, B run, K affine entries per group, M = S*B.
 */
import type { NormView } from '../../core/layout.js';
import { affineSize, statsCount } from '../../core/layout.js';
import type { DType, FloatArray } from '../../core/float.js';
import { dtypeOf } from '../../core/float.js';
import { NormkitError } from '../../errors.js';
import type { NormKernels } from '../contract.js';
import type { Job, Ptr } from './compiled.js';
import type { Plan } from './plan.js';
import { planFor } from './plan.js';
import { addPartials, lanesHold, rowsBackward, rowsForwardTrain, rowsNormalize } from './rows.js';
import type { WantedSlot } from './staging.js';
import { fill, staged, wantedSlot } from './staging.js';
import type { State } from './state.js';
import { ready, runJobs } from './state.js';

export { wasmAvailable, wasmReady, wasmShared, setWasmPool, wasmThreads, wasmPool, runWasmJobs } from './state.js';
export { wasmTensor, freeWasmTensor, residentOf, residentTensor, setResidentBudget, wasmMemory } from './resident.js';

/**
 * Below this many elements one thread is faster than handing a share to the others (with the pool's spin
 * before sleep; `normkit bench`: shape B, 262K elements, runs faster on 2 threads, shape C, 8K, does not).
 */
export const DEFAULT_PARALLEL_MIN = 1 << 16;
let parallelMin = DEFAULT_PARALLEL_MIN;

/** Sets the size from which calls use the worker pool (tests lower it to run the threaded paths on moderate shapes). */
export function setParallelMin(elements: number): void {
  parallelMin = elements;
}

function positive(d: number): boolean {
  return Number.isSafeInteger(d) && d > 0;
}

/** The kernels index memory by the view: its sizes must be positive integers with K dividing B, and the elements fit i32 offsets. */
function checkView(view: NormView): void {
  const { outer, span, groups, inner, affinePerGroup } = view;
  if (!positive(outer) || !positive(span) || !positive(groups) || !positive(inner) || !positive(affinePerGroup) || inner % affinePerGroup !== 0 || outer * span * groups * inner > 2 ** 31) {
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

/**
 * Each entry's list of arrays to stage, refilled by every call (a call runs no caller code before it
 * returns, so no two calls share a list; a small call would spend more making the list than computing).
 * The float64 statistics (A*G values each) are checked and used by the host only.
 */
const stat = (what: string): WantedSlot => wantedSlot(what, 'host', 'float64');
const trainList = [wantedSlot('x'), wantedSlot('y', 'output'), wantedSlot('weight'), wantedSlot('bias'), stat('mean'), stat('variance'), stat('rstd')];
const withStatsList = [wantedSlot('x'), wantedSlot('y', 'output'), wantedSlot('weight'), wantedSlot('bias'), stat('mean'), stat('rstd')];
// dweight and dbias are written from the float64 sums
const backwardList = [wantedSlot('x'), wantedSlot('dy'), wantedSlot('dx', 'output'), wantedSlot('weight'), wantedSlot('dweight', 'host'), wantedSlot('dbias', 'host'), stat('mean'), stat('rstd')];

/** What both forwards stage first: x in, y out, and the affine parameters of `k` entries. */
function forwardArrays(list: WantedSlot[], y: FloatArray, x: FloatArray, n: number, weight: FloatArray | null, bias: FloatArray | null, k: number): WantedSlot[] {
  fill(list[0], x, n);
  fill(list[1], y, n);
  fill(list[2], weight, k);
  fill(list[3], bias, k);
  return list;
}

/** Group-mode forward over the plan's ranges (batchStats: computes the statistics into the plan's, else reads them there); one range is called directly, without a job list. */
function groupForward(s: State, p: Plan, py: Ptr, px: Ptr, pw: Ptr, pb: Ptr, eps: number, batchStats: boolean): void {
  const { span: S, groups: G, inner: B, affinePerGroup: K } = p.view;
  const fn = p.f32 ? 'group_forward_f32' : 'group_forward_f64';
  const variance = batchStats ? p.variance : 0;
  const batch = batchStats ? 1 : 0;
  const fast = p.fast ? 1 : 0;
  if (p.ranges.length === 1) s.kernels[fn](py, px, S, G, B, K, pw, pb, eps, p.mean, variance, p.rstd, batch, p.ranges[0][0], p.ranges[0][1], fast);
  else runJobs(s, p.ranges.map(([q0, q1]): Job => ({ fn, args: [py, px, S, G, B, K, pw, pb, eps, p.mean, variance, p.rstd, batch, q0, q1, fast] })));
}

/** Group mode with given statistics (eval) over rows of G*B values, in memory order. */
function groupNormalizeRows(s: State, p: Plan, rows: readonly (readonly [number, number])[], py: Ptr, px: Ptr, pw: Ptr, pb: Ptr): void {
  const { span: S, groups: G, inner: B, affinePerGroup: K } = p.view;
  const fn = p.f32 ? 'group_normalize_rows_f32' : 'group_normalize_rows_f64';
  const fast = p.fast ? 1 : 0;
  if (rows.length === 1) s.kernels[fn](py, px, S, G, B, K, pw, pb, p.mean, p.rstd, rows[0][0], rows[0][1], fast);
  else runJobs(s, rows.map(([r0, r1]): Job => ({ fn, args: [py, px, S, G, B, K, pw, pb, p.mean, p.rstd, r0, r1, fast] })));
}

/** Group-mode backward over the plan's ranges: each thread's dweight and dbias sums, then added into the first's. */
function groupBackward(s: State, p: Plan, pdx: Ptr, pdy: Ptr, px: Ptr, pw: Ptr, batchStats: boolean): void {
  const { span: S, groups: G, inner: B, affinePerGroup: K } = p.view;
  s.arena.zeroF64(p.partials1, (p.stride / 8) * p.ranges.length);
  s.arena.zeroF64(p.partials2, (p.stride / 8) * p.ranges.length);
  const fn = p.f32 ? 'group_backward_f32' : 'group_backward_f64';
  const batch = batchStats ? 1 : 0;
  const fast = p.fast ? 1 : 0;
  if (p.ranges.length === 1) s.kernels[fn](pdx, pdy, px, S, G, B, K, pw, p.mean, p.rstd, batch, p.partials1, p.partials2, p.ranges[0][0], p.ranges[0][1], fast);
  else runJobs(s, p.ranges.map(([q0, q1], t): Job => ({ fn, args: [pdx, pdy, px, S, G, B, K, pw, p.mean, p.rstd, batch, p.partials1 + t * p.stride, p.partials2 + t * p.stride, q0, q1, fast] })));
  addPartials(s, p);
}

export const wasmKernels: NormKernels = {
  name: 'wasm',
  dtypes: ['float32', 'float64'],
  forwardTrain(y, x, view, weight, bias, eps, mean, variance, rstd) {
    const { s, p, dtype, n } = setup(view, x);
    const count = statsCount(view);
    const wanted = forwardArrays(trainList, y, x, n, weight, bias, affineSize(view));
    fill(wanted[4], mean, count);
    fill(wanted[5], variance, count);
    fill(wanted[6], rstd, count);
    staged(s.arena, dtype, wanted, ([px, py, pw, pb]) => {
      if (p.groupMode) {
        groupForward(s, p, py, px, pw, pb, eps, true);
      } else {
        rowsForwardTrain(s, p, py, px, pw, pb, eps);
      }
    });
    s.arena.readF64(p.mean, mean, count);
    s.arena.readF64(p.variance, variance, count);
    s.arena.readF64(p.rstd, rstd, count);
  },

  forwardWithStats(y, x, view, weight, bias, mean, rstd) {
    const { s, p, dtype, n } = setup(view, x);
    const count = statsCount(view);
    const wanted = forwardArrays(withStatsList, y, x, n, weight, bias, affineSize(view));
    fill(wanted[4], mean, count);
    fill(wanted[5], rstd, count);
    staged(s.arena, dtype, wanted, ([px, py, pw, pb]) => {
      s.arena.writeF64(p.mean, mean, count);
      s.arena.writeF64(p.rstd, rstd, count);
      if (p.groupMode) {
        if (p.rowRanges !== null) groupNormalizeRows(s, p, p.rowRanges, py, px, pw, pb);
        else groupForward(s, p, py, px, pw, pb, 0, false);
      } else {
        rowsNormalize(s, p, p.fast && lanesHold(rstd, count), py, px, pw, pb);
      }
    });
  },

  backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, batchStats) {
    const { s, p, dtype, n } = setup(view, x);
    const k = affineSize(view);
    const count = statsCount(view);
    const wanted = backwardList;
    fill(wanted[0], x, n);
    fill(wanted[1], dy, n);
    fill(wanted[2], dx, n);
    fill(wanted[3], weight, k);
    fill(wanted[4], dweight, k);
    fill(wanted[5], dbias, k);
    fill(wanted[6], mean, count);
    fill(wanted[7], rstd, count);
    staged(s.arena, dtype, wanted, ([px, pdy, pdx, pw]) => {
      s.arena.writeF64(p.mean, mean, count);
      s.arena.writeF64(p.rstd, rstd, count);
      if (p.groupMode) {
        groupBackward(s, p, pdx, pdy, px, pw, batchStats);
        if (dweight !== null) s.arena.readF64(p.partials1, dweight, k);
        if (dbias !== null) s.arena.readF64(p.partials2, dbias, k);
      } else {
        rowsBackward(s, p, p.fast && lanesHold(rstd, count), pdx, pdy, px, pw, batchStats);
        if (dweight !== null) s.arena.readF64(p.dweight, dweight, k);
        if (dbias !== null) s.arena.readF64(p.dbias, dbias, k);
      }
    });
  },
};
