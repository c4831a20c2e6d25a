/**
 * A worker pool over the shared wasm memory, for Node.js worker_threads and browser Web Workers alike:
 * each worker instantiates the kernels over the one shared memory and sleeps on a futex
 * (Atomics.wait). A call writes its jobs into shared slots and wakes the workers; each thread, the
 * calling one included, claims its own job first (thread t job t: a pass finds in cache what the pass
 * before left there), then any job still unclaimed, so a worker that wakes late finds its share taken
 * instead of holding up the call. The calling thread returns when every job is done: Atomics.wait
 * where it may block (Node), a spin where it may not (a browser's main thread).
 */
import { NormkitError } from '../../errors.js';
import type { Kernels } from './compiled.js';
import { callJob, kernelNames } from './compiled.js';
import type { Job, WorkerPool } from './pool.js';

/** Float64 slots per job: function index, argument count, up to 22 arguments. */
export const SLOT = 24;
/** How long a worker, and a calling thread waiting for the jobs, spin before sleeping on the futex (ms). */
export const SPIN_MS = 0.2;
/**
 * control: [0] generation (one per call), [1] jobs done, [2] stop flag, [3] a worker's job threw, [4] jobs,
 * then one claim word per job (CLAIMS on): the call's tag (the generation's low 30 bits) while the job is
 * free, with bit 30 added once a thread claims it by compare-and-swap, so a thread that saw an earlier call
 * cannot take a job of this one.
 */
const GENERATION = 0;
const DONE = 1;
const STOP = 2;
const FAILED = 3;
const JOBS = 4;
const CLAIMS = 5;
const TAG_MASK = 0x3fffffff;

/** What a worker receives to start. */
export interface WorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  readonly slots: SharedArrayBuffer;
  /** the worker's thread index (the calling thread is 0): its own job */
  readonly id: number;
}

/**
 * Of `count` jobs (claim words `claims`), job `own` if still free, else the first free one, now claimed; -1
 * when none is left. It names nothing but its parameters: the workers run its own text (`${claim}` below),
 * which a bundler's renaming keeps whole.
 */
function claim(claims: Int32Array, count: number, tag: number, own: number): number {
  const taken = tag | 0x40000000;
  if (own < count && Atomics.compareExchange(claims, own, tag, taken) === tag) return own;
  for (let job = 0; job < count; job++) if (Atomics.compareExchange(claims, job, tag, taken) === tag) return job;
  return -1;
}

/** The worker's loop as source text (workers run it from a string: the same in src/, dist/ and bundles). */
const workerLoop = `
const GENERATION = ${GENERATION}, DONE = ${DONE}, STOP = ${STOP}, FAILED = ${FAILED}, JOBS = ${JOBS}, CLAIMS = ${CLAIMS}, TAG_MASK = ${TAG_MASK};
const SLOT = ${SLOT}, SPIN_MS = ${SPIN_MS}, names = ${JSON.stringify(kernelNames)};
const claim = ${claim.toString()};
function start(data, send) {
  const { module, memory, control: controlBuffer, slots: slotBuffer, id } = data;
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const fns = names.map((name) => instance.exports[name]);
  const control = new Int32Array(controlBuffer);
  const claims = new Int32Array(controlBuffer, 4 * CLAIMS);
  const slots = new Float64Array(slotBuffer);
  let seen = Atomics.load(control, GENERATION);
  send('ready');
  for (;;) {
    // spin a little before sleeping: in a loop the next job comes within microseconds, and a futex wake costs tens
    // (the clock read once per 256 checks: each read makes a boxed number, i.e. garbage)
    const until = performance.now() + SPIN_MS;
    for (let i = 1; Atomics.load(control, GENERATION) === seen; i++) if ((i & 255) === 0 && performance.now() > until) break;
    Atomics.wait(control, GENERATION, seen);
    seen = Atomics.load(control, GENERATION);
    if (Atomics.load(control, STOP) === 1) break;
    const tag = seen & TAG_MASK;
    const count = Atomics.load(control, JOBS);
    for (let job = claim(claims, count, tag, id); job >= 0; job = claim(claims, count, tag, id)) {
      try {
        // every slot passed (a wasm export ignores arguments past its own): no array made per job, so no
        // garbage whose collection would stall this worker while the caller waits
        const s = job * SLOT + 2;
        fns[slots[s - 2]](slots[s], slots[s + 1], slots[s + 2], slots[s + 3], slots[s + 4], slots[s + 5], slots[s + 6], slots[s + 7], slots[s + 8], slots[s + 9], slots[s + 10], slots[s + 11], slots[s + 12], slots[s + 13], slots[s + 14], slots[s + 15], slots[s + 16], slots[s + 17], slots[s + 18], slots[s + 19], slots[s + 20], slots[s + 21]);
      } catch (error) {
        Atomics.store(control, FAILED, 1);
      }
      if (Atomics.add(control, DONE, 1) + 1 === count) Atomics.notify(control, DONE);
    }
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

/** Shared memory for a pool of `threads` (one job a thread at most). */
export function poolBuffers(threads: number): PoolShared {
  return { control: new Int32Array(new SharedArrayBuffer(4 * (CLAIMS + threads))), slots: new Float64Array(new SharedArrayBuffer(8 * SLOT * threads)) };
}

export function workerInit(shared: PoolShared, module: WebAssembly.Module, memory: WebAssembly.Memory, id: number): WorkerInit {
  return { module, memory, control: shared.control.buffer as SharedArrayBuffer, slots: shared.slots.buffer as SharedArrayBuffer, id };
}

export class SharedPool implements WorkerPool {
  readonly threads: number;
  readonly #control: Int32Array;
  readonly #claims: Int32Array;
  readonly #slots: Float64Array;
  readonly #canBlock: boolean;
  readonly #terminate: () => Promise<void>;
  #closed = false;

  /** `canBlock`: whether this thread may Atomics.wait (else it spins); `terminate` ends the workers. */
  constructor(threads: number, shared: PoolShared, canBlock: boolean, terminate: () => Promise<void>) {
    this.threads = threads;
    this.#control = shared.control;
    this.#claims = shared.control.subarray(CLAIMS);
    this.#slots = shared.slots;
    this.#canBlock = canBlock;
    this.#terminate = terminate;
  }

  run(jobs: readonly Job[], local: Kernels): void {
    if (this.#closed) throw new NormkitError('backend', 'the wasm thread pool is closed');
    const count = jobs.length;
    if (count > this.threads) throw new NormkitError('backend', `the wasm thread pool takes at most one job a thread, got ${count} for ${this.threads} threads`);
    for (let j = 0; j < count; j++) {
      const base = j * SLOT;
      this.#slots[base] = kernelNames.indexOf(jobs[j].fn);
      this.#slots[base + 1] = jobs[j].args.length;
      this.#slots.set(jobs[j].args, base + 2);
    }
    const control = this.#control;
    // the slots, count and claim words before the generation that publishes them (a late worker of the last
    // call holds that call's tag, which these claim words refuse)
    const generation = (Atomics.load(control, GENERATION) + 1) | 0;
    const tag = generation & TAG_MASK;
    Atomics.store(control, FAILED, 0);
    Atomics.store(control, DONE, 0);
    Atomics.store(control, JOBS, count);
    const claims = this.#claims;
    for (let j = 0; j < count; j++) Atomics.store(claims, j, tag);
    Atomics.store(control, GENERATION, generation);
    Atomics.notify(control, GENERATION);
    let failure: Error | null = null;
    for (let j = claim(claims, count, tag, 0); j >= 0; j = claim(claims, count, tag, 0)) {
      try {
        callJob(local, jobs[j]);
      } catch (error) {
        failure = error instanceof Error ? error : new NormkitError('backend', `a wasm kernel failed: ${String(error)}`);
      }
      Atomics.add(control, DONE, 1);
    }
    // the workers' last jobs usually end within microseconds of this thread's: spin, then sleep where this thread may
    const until = performance.now() + SPIN_MS;
    let spins = 0;
    for (let done = Atomics.load(control, DONE); done !== count; done = Atomics.load(control, DONE)) {
      // the clock read once per 256 checks (each read makes garbage)
      if (this.#canBlock && (++spins & 255) === 0 && performance.now() > until) Atomics.wait(control, DONE, done);
    }
    if (failure !== null) throw failure;
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
