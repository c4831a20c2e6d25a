/** Worker threads for the wasm backend in Node.js (worker_threads over the shared memory): created once, reused, closed cleanly. */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkThreads } from '../core/limits.js';
import { NormkitError } from '../errors.js';
import { setWasmPool, wasmShared } from '../kernels/wasm/backend.js';
import { SharedPool, nodeWorkerSource, poolBuffers, workerInit } from '../kernels/wasm/shared-pool.js';

let pool: SharedPool | null = null;

/**
 * Spreads the wasm backend over `threads` threads (default: every core) until stopWasmThreads().
 * Small inputs still run on the calling thread.
 */
export async function startWasmThreads(threads = availableParallelism()): Promise<number> {
  checkThreads('startWasmThreads', threads);
  await stopWasmThreads();
  if (threads === 1) return 1;
  const { module, memory, shared } = wasmShared();
  if (!shared) throw new NormkitError('backend', 'wasm threads need SharedArrayBuffer');
  const buffers = poolBuffers(threads);
  const workers = Array.from({ length: threads - 1 }, (_, k) => new Worker(nodeWorkerSource, { eval: true, execArgv: [], workerData: workerInit(buffers, module, memory, k + 1) }));
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          worker.once('message', () => {
            resolve();
          });
          worker.once('error', reject);
        }),
    ),
  );
  // an idle pool must not keep the process alive
  for (const worker of workers) worker.unref();
  pool = new SharedPool(threads, buffers, true, async () => {
    await Promise.all(workers.map((worker) => worker.terminate()));
  });
  setWasmPool(pool);
  return pool.threads;
}

/** Back to one thread; the workers exit. */
export async function stopWasmThreads(): Promise<void> {
  const current = pool;
  pool = null;
  if (current === null) return;
  setWasmPool(null);
  await current.close();
}
