/**
 * A worker pool over the shared wasm memory, for Node.js worker_threads and browser Web Workers alike:
 * each worker instantiates the kernels over the one shared memory and sleeps on a futex
 * (Atomics.wait); a call writes one job per worker into shared slots, wakes them, runs its own share,
 * and waits until every worker has counted down. The wait is Atomics.wait where the calling thread may
 * block (Node), and a spin on Atomics.load where it may not (a browser's main thread).
 */
import { NormkitError } from '../../errors.js';
import type { Kernels } from './module.js';
import { callJob, kernelNames } from './module.js';
import type { Job, WorkerPool } from './pool.js';

/** Float64 slots per worker: function index, argument count, up to 22 arguments. */
export const SLOT = 24;
/** How long a worker, and a calling thread waiting for the workers, spin before sleeping on the futex (ms). */
export const SPIN_MS = 0.2;
/** control: [0] generation, [1] workers still running, [2] stop flag, [3] a worker's call threw */
const GENERATION = 0;
const PENDING = 1;
const STOP = 2;
const FAILED = 3;

/** What a worker receives to start. */
export interface WorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  readonly slots: SharedArrayBuffer;
  readonly id: number;
  readonly names: readonly string[];
  readonly SLOT: number;
  readonly SPIN_MS: number;
}

/** The worker's loop as source text (workers run it from a string: the same in src/, dist/ and bundles). */
const workerLoop = `
function start(data, send) {
  const { module, memory, control: controlBuffer, slots: slotBuffer, id, names, SLOT, SPIN_MS } = data;
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const fns = names.map((name) => instance.exports[name]);
  const control = new Int32Array(controlBuffer);
  const slots = new Float64Array(slotBuffer);
  let seen = Atomics.load(control, 0);
  send('ready');
  for (;;) {
    // spin a little before sleeping: in a loop the next job comes within microseconds, and a futex wake costs tens
    // (the clock read once per 256 checks: each read makes a boxed number, i.e. garbage)
    const until = performance.now() + SPIN_MS;
    for (let i = 1; Atomics.load(control, 0) === seen; i++) if ((i & 255) === 0 && performance.now() > until) break;
    Atomics.wait(control, 0, seen);
    seen = Atomics.load(control, 0);
    if (Atomics.load(control, 2) === 1) break;
    const base = id * SLOT;
    const fn = slots[base];
    try {
      // every slot passed (a wasm export ignores arguments past its own): no array made per job, so no
      // garbage whose collection would stall this worker while the caller waits
      const s = base + 2;
      if (fn >= 0) fns[fn](slots[s], slots[s + 1], slots[s + 2], slots[s + 3], slots[s + 4], slots[s + 5], slots[s + 6], slots[s + 7], slots[s + 8], slots[s + 9], slots[s + 10], slots[s + 11], slots[s + 12], slots[s + 13], slots[s + 14], slots[s + 15], slots[s + 16], slots[s + 17], slots[s + 18], slots[s + 19], slots[s + 20], slots[s + 21]);
    } catch (error) {
      Atomics.store(control, 3, 1);
    }
    if (Atomics.sub(control, 1, 1) === 1) Atomics.notify(control, 1);
  }
}
`;

/** Source for a Node.js worker_threads Worker (eval: true, init as workerData); runs as a script or as a module. */
export const nodeWorkerSource = `${workerLoop}
const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads');
start(workerData, (message) => parentPort.postMessage(message));
`;

/** Source for a browser Web Worker (init as its first message). */
export const browserWorkerSource = `${workerLoop}
self.onmessage = (event) => start(event.data, (message) => self.postMessage(message));
`;

export interface PoolShared {
  readonly control: Int32Array;
  readonly slots: Float64Array;
}

export function poolBuffers(threads: number): PoolShared {
  return { control: new Int32Array(new SharedArrayBuffer(4 * 4)), slots: new Float64Array(new SharedArrayBuffer(8 * SLOT * threads)) };
}

export function workerInit(shared: PoolShared, module: WebAssembly.Module, memory: WebAssembly.Memory, id: number): WorkerInit {
  return { module, memory, control: shared.control.buffer as SharedArrayBuffer, slots: shared.slots.buffer as SharedArrayBuffer, id, names: kernelNames, SLOT, SPIN_MS };
}

export class SharedPool implements WorkerPool {
  readonly threads: number;
  readonly #control: Int32Array;
  readonly #slots: Float64Array;
  readonly #canBlock: boolean;
  readonly #terminate: () => Promise<void>;
  #closed = false;

  /** `canBlock`: whether this thread may Atomics.wait (else it spins); `terminate` ends the workers. */
  constructor(threads: number, shared: PoolShared, canBlock: boolean, terminate: () => Promise<void>) {
    this.threads = threads;
    this.#control = shared.control;
    this.#slots = shared.slots;
    this.#canBlock = canBlock;
    this.#terminate = terminate;
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
    callJob(local, own);
    // the workers usually finish within microseconds of this thread: spin, then sleep where this thread may
    const until = performance.now() + SPIN_MS;
    let spins = 0;
    for (let left = Atomics.load(control, PENDING); left !== 0; left = Atomics.load(control, PENDING)) {
      // the clock read once per 256 checks (each read makes garbage)
      if (this.#canBlock && (++spins & 255) === 0 && performance.now() > until) Atomics.wait(control, PENDING, left);
    }
    if (Atomics.load(control, FAILED) === 1) throw new NormkitError('backend', 'a wasm worker failed while running a kernel');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#control, STOP, 1);
    Atomics.add(this.#control, GENERATION, 1);
    Atomics.notify(this.#control, GENERATION);
    await this.#terminate();
  }
}
