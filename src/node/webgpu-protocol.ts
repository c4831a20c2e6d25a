/** Messages between the synchronous webgpu facade (webgpu-threads.ts) and its GPU worker (webgpu-worker.ts). */
import type { MessagePort } from 'node:worker_threads';
import type { NormView } from '../core/layout.js';
import type { NormkitErrorCode } from '../errors.js';

/** Every call carries its request id, and its reply the same id: a reply to an earlier (timed-out) call is dropped. */
export type Call = { id: number } & CallBody;

export type CallBody =
  | { op: 'forwardTrain'; x: Float32Array; view: NormView; weight: Float32Array | null; bias: Float32Array | null; eps: number }
  | { op: 'forwardWithStats'; x: Float32Array; view: NormView; weight: Float32Array | null; bias: Float32Array | null; mean: Float64Array; rstd: Float64Array }
  | {
      op: 'backward';
      dy: Float32Array;
      x: Float32Array;
      view: NormView;
      weight: Float32Array | null;
      mean: Float64Array;
      rstd: Float64Array;
      batchStats: boolean;
      affineGrads: boolean;
    };

/** outputs in the contract's order: forwardTrain y, mean, variance, rstd; forwardWithStats y; backward dx, dweight, dbias. */
export type Reply = { id: number } & ({ ok: true; outputs: (Float32Array | Float64Array | null)[] } | { ok: false; code: NormkitErrorCode; message: string });

/** maxStorageBufferBindingSize: the device's limit in bytes, checked before inputs are posted (a clone of gigabytes fails with a DOMException). */
export type Ready = { ok: true; adapter: string; maxStorageBufferBindingSize: number } | { ok: false; code: NormkitErrorCode; message: string };

export interface WorkerInit {
  /** [0]: the number of replies posted (the worker adds 1 after each postMessage). */
  readonly signal: Int32Array;
  readonly port: MessagePort;
}
