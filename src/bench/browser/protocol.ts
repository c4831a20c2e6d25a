/** What run.ts asks of the benchmark page (page.ts) and what the page answers. */
import type { CheckResult } from '../harness.js';
import type { Row } from '../types.js';

export interface PageRequest {
  readonly shapes: readonly string[];
  readonly reps: number;
  readonly budgetMs: number;
  /** normkit's wasm pool size (1 = no workers). */
  readonly threads: number;
  /** The thread count asked of tfjs's wasm backend (setThreadsCount) on this page load. */
  readonly tfjsWasmThreads: number;
  readonly peers: boolean;
  readonly webgpu: boolean;
  /** Name prefixes of the systems to time (empty: all). */
  readonly systems: readonly string[];
}

export interface PageResult {
  readonly rows: readonly Row[];
  readonly checks: readonly CheckResult[];
  readonly log: readonly string[];
}

/** tfjs-wasm after setThreadsCount(asked): its own count (getThreadsCount), and ms of a 1024x1024 matMul and a BatchNorm on shape A. */
export interface ThreadProbe {
  readonly asked: number;
  readonly reported: number;
  readonly crossOriginIsolated: boolean;
  /** navigator.hardwareConcurrency as the page was told it, where it was changed. */
  readonly cores?: number;
  readonly matMulMs: number;
  readonly batchNormMs: number;
}
