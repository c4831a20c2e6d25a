/**
 * The wasm backend behind the kernel contract: stages typed arrays in wasm memory (no copy when they
 * already live there), picks group mode (one statistics group at a time, hot in cache) or row mode
 * (rows of G*B contiguous columns, for channels-last), and spreads the work over the worker pool.
 * View letters: A blocks, S span, G groups, B run, K affine entries per group, R = B/K, M = S*B.
 */
import type { NormView } from '../../core/layout.js';
import { affineSize, statsCount } from '../../core/layout.js';
import { NormkitError } from '../../errors.js';
import type { DType, FloatArray, Tensor } from '../../tensor.js';
import { numel } from '../../tensor.js';
import type { NormKernels } from '../types.js';
import { Arena } from './arena.js';
import type { KernelName, Kernels, WasmShared } from './module.js';
import { compileAsync, compileSync, instantiate } from './module.js';
import type { Job, WorkerPool } from './pool.js';
import { splitRange } from './pool.js';

/** Below this many elements one thread is faster than waking the others (measured: shape B, 262K, ran slower on 2). */
let parallelMin = 1 << 19;

/** Sets the size from which calls use the worker pool (tests lower it to run the threaded paths on moderate shapes). */
export function setParallelMin(elements: number): void {
  parallelMin = elements;
}
/** Runs shorter than this go to row mode, where SIMD runs across columns. */
const GROUP_MODE_MIN_RUN = 8;
/**
 * Float32 statistics groups of at least this many values run in float32 lanes (sums flushed into
 * float64, the mean split hi/lo); smaller ones widen every value to float64: with few values dy can
 * be almost affine in xhat and dx cancels to almost nothing (two values: dx ~ eps), which float32
 * lanes would lose.
 */
const F32_LANES_MIN = 64;

/**
 * Row-mode float32 lanes hold squares and rstd only inside float32's range (as LANES_VAR_MIN and
 * LANES_RSTD_MIN in assembly/norm.ts for group mode): outside it the call runs widened to float64.
 */
function lanesHold(variance: ArrayLike<number> | null, rstd: ArrayLike<number>): boolean {
  for (let q = 0; q < rstd.length; q++) {
    if (variance !== null && !(variance[q] >= 1e-24 && variance[q] < Number.POSITIVE_INFINITY)) return false;
    if (!(rstd[q] >= 1e-30)) return false;
  }
  return true;
}

interface State {
  readonly shared: WasmShared;
  readonly kernels: Kernels;
  readonly arena: Arena;
  pool: WorkerPool | null;
}

let state: State | null = null;

function init(shared: WasmShared): State {
  state = { shared, kernels: instantiate(shared), arena: new Arena(shared.memory), pool: null };
  return state;
}

/** The backend's state, compiling synchronously on first use; null where that is refused (await wasmReady()). */
function current(): State | null {
  if (state !== null) return state;
  const shared = compileSync();
  return shared === null ? null : init(shared);
}

function ready(): State {
  const s = current();
  if (s === null) throw new NormkitError('backend', "the wasm backend is not loaded yet: await wasmReady() first (browsers compile it asynchronously)");
  return s;
}

/** Whether the wasm backend can run now (it compiles on first call where that may be done synchronously). */
export function wasmAvailable(): boolean {
  return current() !== null;
}

/** Loads the wasm backend asynchronously (needed in browsers' main thread); resolves true when it can run. */
export async function wasmReady(): Promise<boolean> {
  if (current() !== null) return true;
  try {
    init(await compileAsync());
    return true;
  } catch {
    return false;
  }
}

/** The module and memory for worker threads to instantiate, and the hook to install their pool. */
export function wasmShared(): WasmShared {
  return ready().shared;
}

export function setWasmPool(pool: WorkerPool | null): void {
  ready().pool = pool;
}

export function wasmThreads(): number {
  return state?.pool?.threads ?? 1;
}

/** The installed worker pool, if any (the benchmark switches between one thread and the pool). */
export function wasmPool(): WorkerPool | null {
  return state?.pool ?? null;
}

/** Runs raw kernel jobs, on the pool when one is installed (the benchmark's bandwidth probe). */
export function runWasmJobs(jobs: readonly Job[]): void {
  const s = ready();
  if (s.pool === null || jobs.length === 1) for (const job of jobs) s.kernels[job.fn](...job.args);
  else s.pool.run(jobs, s.kernels);
}

/**
 * A tensor whose data lives in wasm memory, so the wasm kernels read and write it without copies.
 * Needs shared memory (Node, or a cross-origin-isolated page): there views survive memory growth.
 */
export function wasmTensor(dtype: DType, shape: readonly number[]): Tensor {
  const s = ready();
  if (!s.shared.shared) throw new NormkitError('backend', 'wasmTensor needs shared wasm memory (SharedArrayBuffer); copy-in arrays work everywhere');
  const n = numel(shape);
  const bytes = n * (dtype === 'float64' ? 8 : 4);
  const offset = s.arena.alloc(bytes);
  const data = dtype === 'float64' ? new Float64Array(s.arena.buffer, offset, n) : new Float32Array(s.arena.buffer, offset, n);
  return { data, shape: [...shape] };
}

/** Returns a wasmTensor's memory; the tensor must not be used afterwards. */
export function freeWasmTensor(t: Tensor): void {
  const s = ready();
  if (!s.arena.holds(t.data)) throw new NormkitError('backend', 'freeWasmTensor: this tensor does not live in wasm memory');
  s.arena.free(t.data.byteOffset);
}

/** One call's wasm-side buffers: inputs copied in, outputs copied out, scratch freed at the end. */
class Staging {
  readonly #arena: Arena;
  readonly #blocks: number[] = [];
  readonly #outputs: [FloatArray, number][] = [];

  constructor(arena: Arena) {
    this.#arena = arena;
  }

  input(array: FloatArray): number {
    if (this.#arena.holds(array)) return array.byteOffset;
    const offset = this.#arena.alloc(array.byteLength);
    this.#blocks.push(offset);
    this.#arena.copyIn(offset, array);
    return offset;
  }

  output(array: FloatArray): number {
    if (this.#arena.holds(array)) return array.byteOffset;
    const offset = this.#arena.alloc(array.byteLength);
    this.#blocks.push(offset);
    this.#outputs.push([array, offset]);
    return offset;
  }

  /** A zeroed float64 scratch array of `length` values. */
  f64(length: number, values?: ArrayLike<number>): number {
    const offset = this.#arena.alloc(length * 8);
    this.#blocks.push(offset);
    this.#arena.writeF64(offset, values ?? length);
    return offset;
  }

  /** A float32 scratch array holding `values`. */
  f32(values: ArrayLike<number>): number {
    const offset = this.#arena.alloc(values.length * 4);
    this.#blocks.push(offset);
    this.#arena.writeF32(offset, values);
    return offset;
  }

  read(offset: number, length: number): Float64Array {
    return this.#arena.readF64(offset, length);
  }

  finish(): void {
    for (const [array, offset] of this.#outputs) this.#arena.copyOut(offset, array);
  }

  free(): void {
    for (const offset of this.#blocks) this.#arena.free(offset);
  }
}

interface Plan {
  readonly s: State;
  readonly f32: boolean;
  readonly parts: number;
  readonly groupMode: boolean;
  /** float32 lanes (large float32 groups) */
  readonly fast: boolean;
}

function plan(s: State, x: FloatArray, view: NormView): Plan {
  const parts = s.pool !== null && x.length >= parallelMin ? s.pool.threads : 1;
  const groupMode = view.inner >= GROUP_MODE_MIN_RUN && statsCount(view) >= parts;
  const f32 = x instanceof Float32Array;
  return { s, f32, parts, groupMode, fast: f32 && view.span * view.inner >= F32_LANES_MIN };
}

/** Runs `fn` (a dtype-generic kernel name, or a full export name) once per part. */
function run(p: Plan, fn: string, argsPerPart: readonly (readonly number[])[], exact = false): void {
  const name = (exact ? fn : `${fn}${p.f32 ? '_f32' : '_f64'}`) as KernelName;
  const jobs: Job[] = argsPerPart.map((args) => ({ fn: name, args }));
  if (jobs.length === 1 || p.s.pool === null) {
    for (const job of jobs) p.s.kernels[job.fn](...job.args);
  } else {
    p.s.pool.run(jobs, p.s.kernels);
  }
}

/** Row mode: per (a, column) sums of x (power 1) or (x - colMean)^2 (power 2) over every row, all threads added. */
function rowSums(p: Plan, st: Staging, px: number, view: NormView, power: number, colMean: number): Float64Array {
  const { outer: A, span: S, groups: G, inner: B } = view;
  const cols = G * B;
  const ranges = splitRange(A * S, p.parts);
  const accs = ranges.map(() => st.f64(A * cols));
  run(p, 'rows_moment', ranges.map(([r0, r1], t) => [px, S, cols, r0, r1, colMean, accs[t], power]));
  const total = new Float64Array(A * cols);
  for (const acc of accs) {
    const part = st.read(acc, A * cols);
    for (let i = 0; i < total.length; i++) total[i] += part[i];
  }
  return total;
}

/** Per (a, g): the float32-rounded mean of the group's values in the first rows (up to 16) of block a. */
function firstRowsMean(x: FloatArray, view: NormView): Float32Array {
  const { outer: A, span: S, groups: G, inner: B } = view;
  const cols = G * B;
  const rows = Math.min(S, 16);
  const out = new Float32Array(A * G);
  for (let a = 0; a < A; a++) {
    for (let g = 0; g < G; g++) {
      let sum = 0;
      for (let r = 0; r < rows; r++) for (let b = 0; b < B; b++) sum += x[(a * S + r) * cols + g * B + b];
      out[a * G + g] = sum / (rows * B);
    }
  }
  return out;
}

/** Per-(a, column) copy of a per-(a, g) statistic. */
function perColumn(view: NormView, perGroup: ArrayLike<number>): Float64Array {
  const { outer: A, groups: G, inner: B } = view;
  const out = new Float64Array(A * G * B);
  for (let i = 0; i < out.length; i++) out[i] = perGroup[Math.floor(i / (G * B)) * G + Math.floor((i % (G * B)) / B)];
  return out;
}

/** Affine entry of column c = g*B + b: g*K + floor(b/R). */
function affineOfColumn(view: NormView, c: number): number {
  const { inner: B, affinePerGroup: K } = view;
  return Math.floor(c / B) * K + Math.floor((c % B) / (B / K));
}

function groupSums(view: NormView, perColumn: Float64Array): Float64Array {
  const { outer: A, groups: G, inner: B } = view;
  const out = new Float64Array(A * G);
  for (let i = 0; i < perColumn.length; i++) out[Math.floor(i / (G * B)) * G + Math.floor((i % (G * B)) / B)] += perColumn[i];
  return out;
}

/** The mean as float32 hi + lo parts, so x - hi is exact near the mean and lo carries the rest. */
function splitHiLo(values: Float64Array): [Float32Array, Float32Array] {
  const hi = Float32Array.from(values);
  return [hi, Float32Array.from(values, (v, i) => v - hi[i])];
}

function rowsNormalize(p: Plan, st: Staging, py: number, px: number, view: NormView, weight: FloatArray | null, bias: FloatArray | null, mean: ArrayLike<number>, rstd: ArrayLike<number>): void {
  const { outer: A, span: S, groups: G, inner: B } = view;
  const cols = G * B;
  const colMean = perColumn(view, mean);
  const colScale = perColumn(view, rstd);
  const colShift = new Float64Array(A * cols);
  for (let i = 0; i < colScale.length; i++) {
    const j = affineOfColumn(view, i % cols);
    if (weight !== null) colScale[i] *= weight[j];
    if (bias !== null) colShift[i] = bias[j];
  }
  const ranges = splitRange(A * S, p.parts);
  if (p.fast) {
    const [hi, lo] = splitHiLo(colMean);
    const [phi, plo, psc, psh] = [st.f32(hi), st.f32(lo), st.f32(colScale), st.f32(colShift)];
    run(p, 'rows_apply_f32', ranges.map(([r0, r1]) => [py, px, 0, S, cols, r0, r1, phi, plo, 0, psc, psh, 0, 0]), true);
    return;
  }
  const [pm, psc, psh] = [st.f64(A * cols, colMean), st.f64(A * cols, colScale), st.f64(A * cols, colShift)];
  run(p, 'rows_affine', ranges.map(([r0, r1]) => [py, px, S, cols, r0, r1, pm, psc, psh]));
}

/**
 * Row-mode float32 reductions (rows_reduce_f32) over every row, the threads' partials added:
 * per (a, column) sums [acc1, acc2].
 */
function rowReduceF32(p: Plan, st: Staging, view: NormView, args: { px: number; pdy: number; hi: number; lo: number; rstd: number; kind: number }): [Float64Array, Float64Array] {
  const { outer: A, span: S, groups: G, inner: B } = view;
  const cols = G * B;
  const ranges = splitRange(A * S, p.parts);
  const accs = ranges.map(() => [st.f64(A * cols), st.f64(A * cols)] as const);
  run(p, 'rows_reduce_f32', ranges.map(([r0, r1], t) => [args.px, args.pdy, S, cols, r0, r1, args.hi, args.lo, args.rstd, accs[t][0], accs[t][1], args.kind]), true);
  const total1 = new Float64Array(A * cols);
  const total2 = new Float64Array(A * cols);
  for (const [a1, a2] of accs) {
    const [s1, s2] = [st.read(a1, A * cols), st.read(a2, A * cols)];
    for (let i = 0; i < total1.length; i++) {
      total1[i] += s1[i];
      total2[i] += s2[i];
    }
  }
  return [total1, total2];
}

function staged<T>(s: State, body: (st: Staging) => T): T {
  const st = new Staging(s.arena);
  try {
    const result = body(st);
    st.finish();
    return result;
  } finally {
    st.free();
  }
}

export const wasmKernels: NormKernels = {
  name: 'wasm',
  dtypes: ['float32', 'float64'],
  forwardTrain(y, x, view, weight, bias, eps, mean, variance, rstd) {
    const p = plan(ready(), x, view);
    staged(p.s, (st) => {
      const [px, py] = [st.input(x), st.output(y)];
      const count = statsCount(view);
      const m = view.span * view.inner;
      if (p.groupMode) {
        const [pw, pb] = [weight === null ? 0 : st.input(weight), bias === null ? 0 : st.input(bias)];
        const [pm, pv, pr] = [st.f64(count), st.f64(count), st.f64(count)];
        const { span: S, groups: G, inner: B, affinePerGroup: K } = view;
        run(p, 'group_forward', splitRange(count, p.parts).map(([q0, q1]) => [py, px, S, G, B, K, pw, pb, eps, pm, pv, pr, 1, q0, q1, p.fast ? 1 : 0]));
        mean.set(st.read(pm, count));
        variance.set(st.read(pv, count));
        rstd.set(st.read(pr, count));
        return;
      }
      if (p.fast) {
        // row mode, float32 lanes: moments around a shift near the mean (the mean of the first rows), corrected
        // in float64; one pass over x. Where the shift proves far from the mean (|mean - shift|^2 > var:
        // float32 sums would lose digits) a second pass centres on the mean found.
        let shift = firstRowsMean(x, view);
        let sums = rowReduceF32(p, st, view, { px, pdy: 0, hi: st.f32(perColumn(view, shift)), lo: 0, rstd: 0, kind: 1 }).map((c) => groupSums(view, c));
        const far = (q: number) => (sums[0][q] / m) ** 2 > Math.max(0, sums[1][q] / m - (sums[0][q] / m) ** 2);
        if (shift.some((_, q) => far(q))) {
          shift = shift.map((k, q) => Math.fround(k + sums[0][q] / m));
          sums = rowReduceF32(p, st, view, { px, pdy: 0, hi: st.f32(perColumn(view, shift)), lo: 0, rstd: 0, kind: 1 }).map((c) => groupSums(view, c));
        }
        const [s1, s2] = sums;
        for (let q = 0; q < count; q++) {
          mean[q] = shift[q] + s1[q] / m;
          variance[q] = Math.max(0, s2[q] / m - (s1[q] / m) ** 2);
          rstd[q] = 1 / Math.sqrt(variance[q] + eps);
        }
        if (lanesHold(variance, rstd)) {
          rowsNormalize(p, st, py, px, view, weight, bias, mean, rstd);
          return;
        }
        // float32 squares overflowed or underflowed: the float64 row path below
      }
      // row mode: mean from column sums, then the variance around it (two passes, no cancellation)
      const sums = groupSums(view, rowSums(p, st, px, view, 1, 0));
      for (let q = 0; q < count; q++) mean[q] = sums[q] / m;
      const pColMean = st.f64(view.outer * view.groups * view.inner, perColumn(view, mean));
      const squares = groupSums(view, rowSums(p, st, px, view, 2, pColMean));
      for (let q = 0; q < count; q++) {
        variance[q] = squares[q] / m;
        rstd[q] = 1 / Math.sqrt(variance[q] + eps);
      }
      rowsNormalize({ ...p, fast: false }, st, py, px, view, weight, bias, mean, rstd);
    });
  },

  forwardWithStats(y, x, view, weight, bias, mean, rstd) {
    const p = plan(ready(), x, view);
    staged(p.s, (st) => {
      const [px, py] = [st.input(x), st.output(y)];
      const count = statsCount(view);
      if (p.groupMode) {
        const [pw, pb] = [weight === null ? 0 : st.input(weight), bias === null ? 0 : st.input(bias)];
        const [pm, pr] = [st.f64(count, mean), st.f64(count, rstd)];
        const { span: S, groups: G, inner: B, affinePerGroup: K } = view;
        run(p, 'group_forward', splitRange(count, p.parts).map(([q0, q1]) => [py, px, S, G, B, K, pw, pb, 0, pm, 0, pr, 0, q0, q1, p.fast ? 1 : 0]));
        return;
      }
      rowsNormalize({ ...p, fast: p.fast && lanesHold(null, rstd) }, st, py, px, view, weight, bias, mean, rstd);
    });
  },

  backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, batchStats) {
    const p = plan(ready(), x, view);
    const k = affineSize(view);
    const sumDweight = new Float64Array(k);
    const sumDbias = new Float64Array(k);
    staged(p.s, (st) => {
      const [px, pdy, pdx] = [st.input(x), st.input(dy), st.output(dx)];
      const count = statsCount(view);
      const { outer: A, span: S, groups: G, inner: B, affinePerGroup: K } = view;
      const m = S * B;
      if (p.groupMode) {
        const pw = weight === null ? 0 : st.input(weight);
        const [pm, pr] = [st.f64(count, mean), st.f64(count, rstd)];
        const ranges = splitRange(count, p.parts);
        const partials = ranges.map(() => [st.f64(k), st.f64(k)] as const);
        run(p, 'group_backward', ranges.map(([q0, q1], t) => [pdx, pdy, px, S, G, B, K, pw, pm, pr, batchStats ? 1 : 0, partials[t][0], partials[t][1], q0, q1, p.fast ? 1 : 0]));
        for (const [pdw, pdb] of partials) {
          const [dw, db] = [st.read(pdw, k), st.read(pdb, k)];
          for (let j = 0; j < k; j++) {
            sumDweight[j] += dw[j];
            sumDbias[j] += db[j];
          }
        }
        return;
      }
      // row mode: per-column sums of dy and dy*xhat, reduced to affine entries and groups, then dx
      const cols = G * B;
      const colMean = perColumn(view, mean);
      const colRstd = perColumn(view, rstd);
      const ranges = splitRange(A * S, p.parts);
      let sumDy: Float64Array;
      let sumDyXhat: Float64Array;
      let f32Params: [number, number, number] = [0, 0, 0];
      const fast = p.fast && lanesHold(null, rstd);
      if (fast) {
        const [hi, lo] = splitHiLo(colMean);
        f32Params = [st.f32(hi), st.f32(lo), st.f32(colRstd)];
        [sumDy, sumDyXhat] = rowReduceF32(p, st, view, { px, pdy, hi: f32Params[0], lo: f32Params[1], rstd: f32Params[2], kind: 2 });
      } else {
        sumDy = new Float64Array(A * cols);
        sumDyXhat = new Float64Array(A * cols);
        const [pm, pr] = [st.f64(A * cols, colMean), st.f64(A * cols, colRstd)];
        const accs = ranges.map(() => [st.f64(A * cols), st.f64(A * cols)] as const);
        run(p, 'rows_backward_sums', ranges.map(([r0, r1], t) => [px, pdy, S, cols, r0, r1, pm, pr, accs[t][0], accs[t][1]]));
        for (const [a1, a2] of accs) {
          const [s1, s2] = [st.read(a1, A * cols), st.read(a2, A * cols)];
          for (let i = 0; i < sumDy.length; i++) {
            sumDy[i] += s1[i];
            sumDyXhat[i] += s2[i];
          }
        }
      }
      const sumDxhat = new Float64Array(count);
      const sumDxhatXhat = new Float64Array(count);
      const colW = new Float64Array(A * cols);
      for (let i = 0; i < sumDy.length; i++) {
        const j = affineOfColumn(view, i % cols);
        const q = Math.floor(i / cols) * G + Math.floor((i % cols) / B);
        const w = weight === null ? 1 : weight[j];
        colW[i] = w;
        sumDbias[j] += sumDy[i];
        sumDweight[j] += sumDyXhat[i];
        sumDxhat[q] += w * sumDy[i];
        sumDxhatXhat[q] += w * sumDyXhat[i];
      }
      // dx = k1*dy - c1 - xhat*c2 with k1 = rstd*w, c1 = rstd*sum(dxhat)/M, c2 = rstd*sum(dxhat*xhat)/M
      const k1 = colRstd.map((r, i) => r * colW[i]);
      const c1 = batchStats ? perColumn(view, sumDxhat.map((v, q) => (rstd[q] * v) / m)) : new Float64Array(A * cols);
      const c2 = batchStats ? perColumn(view, sumDxhatXhat.map((v, q) => (rstd[q] * v) / m)) : new Float64Array(A * cols);
      if (fast) {
        const [phi, plo, prs] = f32Params;
        const [pk1, pc1, pc2] = [st.f32(k1), st.f32(c1), st.f32(c2)];
        run(p, 'rows_apply_f32', ranges.map(([r0, r1]) => [pdx, px, pdy, S, cols, r0, r1, phi, plo, prs, pk1, pc1, pc2, 1]), true);
        return;
      }
      const [pm, pr] = [st.f64(A * cols, colMean), st.f64(A * cols, colRstd)];
      const [pk1, pc1, pc2] = [st.f64(A * cols, k1), st.f64(A * cols, c1), st.f64(A * cols, c2)];
      run(p, 'rows_dx', ranges.map(([r0, r1]) => [pdx, pdy, px, S, cols, r0, r1, pm, pr, pk1, pc1, pc2]));
    });
    dweight?.set(sumDweight);
    dbias?.set(sumDbias);
  },
};
