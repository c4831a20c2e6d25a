/**
 * Worker threads for the wasm backend in Node.js: each worker instantiates the kernels over the one
 * shared memory and waits on a futex (Atomics.wait); a call wakes them, runs its own share on the
 * calling thread, and sleeps until every worker has counted down. Created once, reused, closed cleanly.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { NormkitError } from '../errors.js';
import { kernelNames } from '../kernels/wasm/module.js';
import type { Kernels } from '../kernels/wasm/module.js';
import { setWasmPool, wasmShared } from '../kernels/wasm/backend.js';
import type { Job, WorkerPool } from '../kernels/wasm/pool.js';

/** Float64 slots per worker: function index, argument count, up to 22 arguments. */
const SLOT = 24;
/** control: [0] generation, [1] workers still running, [2] stop flag, [3] a worker's call threw */
const GENERATION = 0;
const PENDING = 1;
const STOP = 2;
const FAILED = 3;

// CommonJS source evaluated in each worker (eval: true), so it runs the same from src/ and dist/.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, control: controlBuffer, slots: slotBuffer, id, names, SLOT } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const fns = names.map((name) => instance.exports[name]);
const control = new Int32Array(controlBuffer);
const slots = new Float64Array(slotBuffer);
let seen = Atomics.load(control, 0);
parentPort.postMessage('ready');
for (;;) {
  Atomics.wait(control, 0, seen);
  seen = Atomics.load(control, 0);
  if (Atomics.load(control, 2) === 1) break;
  const base = id * SLOT;
  const fn = slots[base];
  try {
    if (fn >= 0) fns[fn](...slots.subarray(base + 2, base + 2 + slots[base + 1]));
  } catch (error) {
    Atomics.store(control, 3, 1);
  }
  if (Atomics.sub(control, 1, 1) === 1) Atomics.notify(control, 1);
}
`;

class NodeWasmPool implements WorkerPool {
  readonly threads: number;
  readonly #workers: Worker[];
  readonly #control: Int32Array;
  readonly #slots: Float64Array;
  #closed = false;

  private constructor(workers: Worker[], control: Int32Array, slots: Float64Array) {
    this.#workers = workers;
    this.#control = control;
    this.#slots = slots;
    this.threads = workers.length + 1;
  }

  static async start(threads: number): Promise<NodeWasmPool> {
    const { module, memory } = wasmShared();
    const control = new Int32Array(new SharedArrayBuffer(4 * 4));
    const slots = new Float64Array(new SharedArrayBuffer(8 * SLOT * threads));
    const workers = Array.from({ length: threads - 1 }, (_, k) => {
      const workerData = { module, memory, control: control.buffer, slots: slots.buffer, id: k + 1, names: kernelNames, SLOT };
      return new Worker(workerSource, { eval: true, workerData });
    });
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
    return new NodeWasmPool(workers, control, slots);
  }

  run(jobs: readonly Job[], local: Kernels): void {
    if (this.#closed) throw new NormkitError('backend', 'the wasm thread pool is closed');
    const [own, ...rest] = jobs;
    for (let w = 1; w < this.threads; w++) {
      const job = rest[w - 1] as Job | undefined;
      const base = w * SLOT;
      if (job === undefined) {
        this.#slots[base] = -1;
        continue;
      }
      this.#slots[base] = kernelNames.indexOf(job.fn);
      this.#slots[base + 1] = job.args.length;
      this.#slots.set(job.args, base + 2);
    }
    const control = this.#control;
    Atomics.store(control, FAILED, 0);
    Atomics.store(control, PENDING, this.threads - 1);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    local[own.fn](...own.args);
    for (let left = Atomics.load(control, PENDING); left !== 0; left = Atomics.load(control, PENDING)) {
      Atomics.wait(control, PENDING, left);
    }
    if (Atomics.load(control, FAILED) === 1) throw new NormkitError('backend', 'a wasm worker failed while running a kernel');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#control, STOP, 1);
    Atomics.add(this.#control, GENERATION, 1);
    Atomics.notify(this.#control, GENERATION);
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}

let pool: NodeWasmPool | null = null;

/**
 * Spreads the wasm backend over `threads` threads (default: every core) until stopWasmThreads().
 * Small inputs still run on the calling thread.
 */
export async function startWasmThreads(threads = availableParallelism()): Promise<number> {
  if (!Number.isInteger(threads) || threads < 1) throw new NormkitError('option', `threads must be a positive integer, got ${threads}`);
  await stopWasmThreads();
  if (threads === 1) return 1;
  if (!wasmShared().shared) throw new NormkitError('backend', 'wasm threads need SharedArrayBuffer');
  pool = await NodeWasmPool.start(threads);
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
