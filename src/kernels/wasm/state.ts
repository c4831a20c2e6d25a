/**
 * The wasm backend's module state: the compiled kernels over one memory, its arena, the worker pool;
 * compiled on first use where that may be done synchronously (await wasmReady() in browsers).
 */
import { NormkitError } from '../../errors.js';
import { Arena } from './arena.js';
import type { Job, Kernels, WasmShared } from './compiled.js';
import { callJob, compileAsync, compileSync, instantiate } from './compiled.js';
import type { WorkerPool } from './pool.js';

export interface State {
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
export function current(): State | null {
  if (state !== null) return state;
  const shared = compileSync();
  return shared === null ? null : init(shared);
}

export function ready(): State {
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

/** Runs kernel jobs, jobs[0] here and the rest on the pool's workers when one is installed. */
export function runJobs(s: State, jobs: readonly Job[]): void {
  if (s.pool === null || jobs.length === 1) for (const job of jobs) callJob(s.kernels, job);
  else s.pool.run(jobs, s.kernels);
}

/** Runs raw kernel jobs (the benchmark's bandwidth probe). */
export function runWasmJobs(jobs: readonly Job[]): void {
  runJobs(ready(), jobs);
}
