/**
 * Web Workers for the wasm backend in browsers. Needs shared memory, i.e. a cross-origin-isolated
 * page (COOP: same-origin, COEP: require-corp). The calling (main) thread may not block, so it spins
 * while the workers finish: worth it only for large inputs, which is when the pool is used.
 */
import { checkThreads } from '../../core/limits.js';
import { NormkitError } from '../../errors.js';
import { setWasmPool, wasmReady, wasmShared } from './backend.js';
import { SharedPool, browserWorkerSource, poolBuffers, workerInit } from './shared-pool.js';

let pool: SharedPool | null = null;

/** Starts `threads` - 1 Web Workers (default: hardwareConcurrency); resolves to the thread count in use. */
export async function startWasmWorkers(threads = typeof navigator === 'undefined' ? 2 : navigator.hardwareConcurrency): Promise<number> {
  checkThreads('startWasmWorkers', threads);
  await stopWasmWorkers();
  if (threads === 1) return 1;
  if (typeof Worker === 'undefined' || typeof Blob === 'undefined') throw new NormkitError('backend', 'startWasmWorkers needs Web Workers (in Node.js use startWasmThreads from normkit/node)');
  if (!(await wasmReady())) throw new NormkitError('backend', 'the wasm backend is not available here');
  const { module, memory, shared } = wasmShared();
  if (!shared) throw new NormkitError('backend', 'wasm workers need shared memory: serve the page cross-origin isolated (COOP same-origin, COEP require-corp)');
  const buffers = poolBuffers(threads);
  const url = URL.createObjectURL(new Blob([browserWorkerSource], { type: 'text/javascript' }));
  const workers = Array.from({ length: threads - 1 }, () => new Worker(url));
  try {
    await Promise.all(
      workers.map(
        (worker, k) =>
          new Promise<void>((resolve, reject) => {
            worker.onmessage = () => {
              resolve();
            };
            worker.onerror = (event) => {
              reject(new NormkitError('backend', `a wasm worker failed to start: ${event.message}`));
            };
            worker.postMessage(workerInit(buffers, module, memory, k + 1));
          }),
      ),
    );
  } finally {
    URL.revokeObjectURL(url);
  }
  pool = new SharedPool(threads, buffers, false, () => {
    for (const worker of workers) worker.terminate();
    return Promise.resolve();
  });
  setWasmPool(pool);
  return threads;
}

/** Back to one thread; the workers are terminated. */
export async function stopWasmWorkers(): Promise<void> {
  const current = pool;
  pool = null;
  if (current === null) return;
  setWasmPool(null);
  await current.close();
}
