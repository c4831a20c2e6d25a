/**
 * Loads the compiled kernels (binary.generated.ts, built from assembly/norm.ts) over one memory:
 * shared (threads build) where SharedArrayBuffer exists, else private (SIMD build).
 */
import { NormkitError } from '../../errors.js';
import { simdWasm, threadsWasm } from './binary.generated.js';

/** A byte offset into wasm memory (0: no array). */
export type Ptr = number;
type Fn<P extends number[]> = (...args: P) => void;
/** group mode: y, x, S, G, B, K, weight, bias, eps, mean, variance, rstd, batchStats, q0, q1, float32 lanes */
type GroupForward = Fn<[y: Ptr, x: Ptr, S: number, G: number, B: number, K: number, weight: Ptr, bias: Ptr, eps: number, mean: Ptr, variance: Ptr, rstd: Ptr, batchStats: number, q0: number, q1: number, fast: number]>;
/** eval mode in memory order: y, x, S, G, B, K, weight, bias, mean, rstd, rows [r0, r1) (row = a*S + s), float32 lanes */
type GroupNormalizeRows = Fn<[y: Ptr, x: Ptr, S: number, G: number, B: number, K: number, weight: Ptr, bias: Ptr, mean: Ptr, rstd: Ptr, r0: number, r1: number, fast: number]>;
type GroupBackward = Fn<[dx: Ptr, dy: Ptr, x: Ptr, S: number, G: number, B: number, K: number, weight: Ptr, mean: Ptr, rstd: Ptr, batchStats: number, dweight: Ptr, dbias: Ptr, q0: number, q1: number, fast: number]>;
type RowsSum = Fn<[x: Ptr, S: number, A: number, cols: number, r0: number, r1: number, colMean: Ptr, acc1: Ptr, acc2: Ptr]>;
type RowsColumns = Fn<[A: number, G: number, B: number, K: number, mean: Ptr, meanLo: Ptr, rstd: Ptr, weight: Ptr, bias: Ptr, colMean: Ptr, scale: Ptr, shift: Ptr]>;
type RowsAffine = Fn<[y: Ptr, x: Ptr, S: number, cols: number, r0: number, r1: number, colMean: Ptr, scale: Ptr, shift: Ptr]>;
type RowsBackwardSums = Fn<[x: Ptr, dy: Ptr, S: number, A: number, cols: number, r0: number, r1: number, colMean: Ptr, acc1: Ptr, acc2: Ptr, acc3: Ptr]>;
type RowsDx = Fn<[dx: Ptr, dy: Ptr, x: Ptr, S: number, cols: number, r0: number, r1: number, colMean: Ptr, colRstd: Ptr, k1: Ptr, c1: Ptr, c2: Ptr]>;
/** mean: the float64 statistics, whose float32 rounding hi the lanes' sums were taken around */
type RowsDxCoefsLanes = Fn<[acc1: Ptr, acc2: Ptr, A: number, G: number, B: number, K: number, M: number, weight: Ptr, mean: Ptr, rstd: Ptr, batchStats: number, dweight: Ptr, dbias: Ptr, k1: Ptr, c1: Ptr, c2: Ptr]>;
/** acc3: sum (x - mean) per column, the batch mean's lost digits */
type RowsDxCoefs = Fn<[acc1: Ptr, acc2: Ptr, acc3: Ptr, A: number, G: number, B: number, K: number, M: number, weight: Ptr, rstd: Ptr, batchStats: number, dweight: Ptr, dbias: Ptr, k1: Ptr, c1: Ptr, c2: Ptr]>;

/** Every export of assembly/norm.ts with its signature (numbers are i32, f64 or byte offsets). */
export interface Kernels {
  readonly group_forward_f32: GroupForward;
  readonly group_forward_f64: GroupForward;
  readonly group_normalize_rows_f32: GroupNormalizeRows;
  readonly group_normalize_rows_f64: GroupNormalizeRows;
  readonly group_backward_f32: GroupBackward;
  readonly group_backward_f64: GroupBackward;
  /** adds parts 1.. of n f64 values (stride bytes apart) into part 0: the threads' partial sums */
  readonly add_partials: Fn<[acc: Ptr, parts: number, stride: number, n: number]>;
  // row mode, float32 lanes (rows.ts)
  readonly rows_shift_f32x4: Fn<[x: Ptr, S: number, A: number, G: number, B: number, shift: Ptr]>;
  /** lane: the thread's float32 column sums (2*cols values) */
  readonly rows_moments_f32x4: Fn<[x: Ptr, S: number, A: number, cols: number, r0: number, r1: number, shift: Ptr, acc1: Ptr, acc2: Ptr, lane: Ptr]>;
  /** returns bit 1 where a shift proved far from its mean (and moves it there): run the moments again; bit 2 where float32 lanes do not hold */
  readonly rows_moment_stats_f32x4: (acc1: Ptr, acc2: Ptr, shift: Ptr, A: number, G: number, B: number, M: number, eps: number, mean: Ptr, variance: Ptr, rstd: Ptr, check: number) => number;
  readonly rows_columns_f32x4: Fn<[A: number, G: number, B: number, K: number, mean: Ptr, rstd: Ptr, weight: Ptr, bias: Ptr, hi: Ptr, scale: Ptr, shift: Ptr]>;
  readonly rows_normalize_f32x4: Fn<[y: Ptr, x: Ptr, S: number, cols: number, r0: number, r1: number, hi: Ptr, scale: Ptr, shift: Ptr]>;
  readonly rows_backward_sums_f32x4: Fn<[x: Ptr, dy: Ptr, S: number, A: number, cols: number, r0: number, r1: number, hi: Ptr, acc1: Ptr, acc2: Ptr, lane: Ptr]>;
  readonly rows_dx_coefs_f32x4: RowsDxCoefsLanes;
  readonly rows_dx_f32x4: Fn<[dx: Ptr, dy: Ptr, x: Ptr, S: number, cols: number, r0: number, r1: number, hi: Ptr, rstd: Ptr, k1: Ptr, c1: Ptr, c2: Ptr]>;
  // row mode, every value widened to float64
  readonly rows_sum_f32: RowsSum;
  readonly rows_sum_f64: RowsSum;
  /** sq 0: mean (hi) and colMean from column sums; sq 1: mean + meanLo, variance and rstd from sums of deviations and their squares */
  readonly rows_sum_stats: Fn<[acc1: Ptr, acc2: Ptr, A: number, G: number, B: number, M: number, eps: number, sq: number, mean: Ptr, meanLo: Ptr, colMean: Ptr, variance: Ptr, rstd: Ptr]>;
  readonly rows_columns_f32: RowsColumns;
  readonly rows_columns_f64: RowsColumns;
  readonly rows_affine_f32: RowsAffine;
  readonly rows_affine_f64: RowsAffine;
  readonly rows_backward_sums_f32: RowsBackwardSums;
  readonly rows_backward_sums_f64: RowsBackwardSums;
  readonly rows_dx_coefs_f32: RowsDxCoefs;
  readonly rows_dx_coefs_f64: RowsDxCoefs;
  readonly rows_dx_f32: RowsDx;
  readonly rows_dx_f64: RowsDx;
  readonly copy: Fn<[dst: Ptr, src: Ptr, bytes: number]>;
  readonly zero: Fn<[dst: Ptr, bytes: number]>;
}
export type KernelName = keyof Kernels;

const kernelNames: readonly KernelName[] = [
  'group_forward_f32',
  'group_forward_f64',
  'group_normalize_rows_f32',
  'group_normalize_rows_f64',
  'group_backward_f32',
  'group_backward_f64',
  'add_partials',
  'rows_shift_f32x4',
  'rows_moments_f32x4',
  'rows_moment_stats_f32x4',
  'rows_columns_f32x4',
  'rows_normalize_f32x4',
  'rows_backward_sums_f32x4',
  'rows_dx_coefs_f32x4',
  'rows_dx_f32x4',
  'rows_sum_f32',
  'rows_sum_f64',
  'rows_sum_stats',
  'rows_columns_f32',
  'rows_columns_f64',
  'rows_affine_f32',
  'rows_affine_f64',
  'rows_backward_sums_f32',
  'rows_backward_sums_f64',
  'rows_dx_coefs_f32',
  'rows_dx_coefs_f64',
  'rows_dx_f32',
  'rows_dx_f64',
  'copy',
  'zero',
];
export { kernelNames };

/** One kernel call: an export and its arguments, typed together. */
export type Job = { readonly [K in KernelName]: { readonly fn: K; readonly args: Readonly<Parameters<Kernels[K]>> } }[KernelName];

/** Runs one job (every export takes numbers only, so any of them is callable with its job's list). */
export function callJob(kernels: Kernels, job: Job): void {
  const fn: (...args: readonly number[]) => unknown = kernels[job.fn];
  fn(...job.args);
}

/** The module and memory every thread instantiates. */
export interface WasmShared {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
}

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function isFn(value: unknown): value is (...args: number[]) => number {
  return typeof value === 'function';
}

function kernelsOf(instance: WebAssembly.Instance): Kernels {
  const exported = (name: KernelName) => {
    const fn = instance.exports[name];
    if (!isFn(fn)) throw new NormkitError('backend', `wasm kernels: export ${name} is missing`);
    return fn;
  };
  // every export takes and returns plain numbers: its typed signature in Kernels is the AssemblyScript one
  return Object.fromEntries(kernelNames.map((name) => [name, exported(name)])) as Record<KernelName, (...args: number[]) => number>;
}

const sharedMemoryAvailable = typeof SharedArrayBuffer === 'function' && (typeof crossOriginIsolated === 'undefined' || crossOriginIsolated);

/** Compiles synchronously (Node; small modules in browsers) and returns null where that is refused. */
export function compileSync(): WasmShared | null {
  try {
    const shared = sharedMemoryAvailable;
    const module = new WebAssembly.Module(decode(shared ? threadsWasm : simdWasm));
    const memory = new WebAssembly.Memory(shared ? { initial: 16, maximum: 65536, shared: true } : { initial: 16, maximum: 65536 });
    return { module, memory, shared };
  } catch {
    return null;
  }
}

/** Compiles asynchronously (browsers' main thread refuses synchronous compiles of this size). */
export async function compileAsync(): Promise<WasmShared> {
  const shared = sharedMemoryAvailable;
  const module = await WebAssembly.compile(decode(shared ? threadsWasm : simdWasm));
  const memory = new WebAssembly.Memory(shared ? { initial: 16, maximum: 65536, shared: true } : { initial: 16, maximum: 65536 });
  return { module, memory, shared };
}

export function instantiate(shared: WasmShared): Kernels {
  return kernelsOf(new WebAssembly.Instance(shared.module, { env: { memory: shared.memory } }));
}
