/**
 * The synchronous webgpu backend in Node.js: Dawn runs on a worker thread; each kernel call posts
 * its inputs, blocks on a shared flag until the worker has downloaded the results, and takes the
 * reply with receiveMessageOnPort. This keeps the one synchronous contract for layers, conformance and bench.
 */
import { extname } from 'node:path';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { NormkitError } from '../errors.js';
import { describeValue } from '../tensor.js';
import type { NormKernels } from '../kernels/contract.js';
import { setWebGpuKernels } from '../kernels/webgpu/sync-slot.js';
import { checkTensorSize } from '../kernels/webgpu/engine.js';
import { float32 } from '../kernels/webgpu/typed-kernels.js';
import { quietRuntimeDir } from './dawn.js';
import type { Call, CallBody, Ready, Reply, WorkerInit } from './webgpu-protocol.js';

interface Session {
  /** How long a call waits for the GPU (startWebGpu({ timeoutMs }) on a running session changes it). */
  readonly wait: { timeoutMs: number };
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly adapter: string;
}

let session: Session | null = null;

/** The worker beside this file, with this file's extension: .js in the package, .ts run from source (as the tests do). */
function startWorker(workerData: WorkerInit, transferList: MessagePort[]): Worker {
  const entry = new URL(`./webgpu-worker${extname(import.meta.url)}`, import.meta.url);
  return new Worker(entry, { workerData, transferList, execArgv: workerExecArgv(process.execArgv) });
}

/** Node flags a worker takes, and those of them that take a value (given as `--flag value` or `--flag=value`). */
const workerFlags = /^(--import|--require|-r|--loader|--experimental-loader|--conditions|-C|--enable-source-maps|--no-warnings|--no-deprecation|--trace-warnings|--trace-deprecation|--trace-uncaught|--unhandled-rejections|--experimental-[a-z-]+|--no-experimental-[a-z-]+)(=|$)/;
const flagsWithValue = /^(--import|--require|-r|--loader|--experimental-loader|--conditions|-C|--unhandled-rejections)$/;

/**
 * The parent's execArgv that a worker takes: module loaders, conditions and warnings kept (the tests run
 * from source through them); process-wide flags (--max-old-space-size, --expose-gc, --input-type, ...)
 * dropped, since a Worker given one refuses to start (ERR_WORKER_INVALID_EXEC_ARGV).
 */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i];
    const takesValue = flagsWithValue.test(arg) && i + 1 < execArgv.length;
    if (workerFlags.test(arg)) {
      kept.push(arg);
      if (takesValue) kept.push(execArgv[++i]);
    } else if (!arg.includes('=') && i + 1 < execArgv.length && !execArgv[i + 1].startsWith('-')) {
      // a dropped flag given as two arguments (--max-old-space-size 512) takes its value with it
      i++;
    }
  }
  return kept;
}

function syncKernels(port: MessagePort, signal: Int32Array, wait: { timeoutMs: number }, maxBindingBytes: number): NormKernels {
  let lastId = 0;
  /** The reply with `id` if it is on the port now; replies to earlier, timed-out calls are dropped. */
  const take = (id: number): Reply | null => {
    for (let received = receiveMessageOnPort(port); received !== undefined; received = receiveMessageOnPort(port)) {
      const reply = received.message as Reply;
      if (reply.id === id) return reply;
    }
    return null;
  };
  const call = (body: CallBody): (Float32Array | Float64Array | null)[] => {
    checkTensorSize(body.x.length, maxBindingBytes);
    const id = ++lastId;
    let seen = Atomics.load(signal, 0);
    try {
      port.postMessage({ id, ...body } satisfies Call);
    } catch (error) {
      throw new NormkitError('backend', `webgpu: the inputs could not be sent to the GPU worker (${error instanceof Error ? error.message : String(error)})`);
    }
    const { timeoutMs } = wait;
    const deadline = performance.now() + timeoutMs;
    let reply = take(id);
    while (reply === null) {
      const left = deadline - performance.now();
      // a timed-out call's reply, when it comes, has an id no later call waits for: it is dropped
      if (left <= 0 || Atomics.wait(signal, 0, seen, left) === 'timed-out') {
        reply = take(id);
        if (reply !== null) break;
        throw new NormkitError('backend', `webgpu: the GPU worker did not answer within ${timeoutMs} ms`);
      }
      seen = Atomics.load(signal, 0);
      reply = take(id);
    }
    if (!reply.ok) throw new NormkitError(reply.code, reply.message);
    return reply.outputs;
  };
  const optional = (a: Float32Array | Float64Array | null, what: string) => (a === null ? null : float32(a, what));
  return {
    name: 'webgpu',
    dtypes: ['float32'],
    forwardTrain(y, x, view, weight, bias, eps, mean, variance, rstd) {
      const out = float32(y, 'y');
      const [ys, m, v, r] = call({ op: 'forwardTrain', x: float32(x, 'x'), view: { ...view }, weight: optional(weight, 'weight'), bias: optional(bias, 'bias'), eps });
      out.set(ys!);
      mean.set(m!);
      variance.set(v!);
      rstd.set(r!);
    },
    forwardWithStats(y, x, view, weight, bias, mean, rstd) {
      const out = float32(y, 'y');
      const [ys] = call({ op: 'forwardWithStats', x: float32(x, 'x'), view: { ...view }, weight: optional(weight, 'weight'), bias: optional(bias, 'bias'), mean, rstd });
      out.set(ys!);
    },
    backward(dx, dweight, dbias, dy, x, view, weight, mean, rstd, batchStats) {
      const dxOut = float32(dx, 'dx');
      const dweightOut = optional(dweight, 'dweight');
      const dbiasOut = optional(dbias, 'dbias');
      const affineGrads = dweightOut !== null || dbiasOut !== null;
      const message: CallBody = { op: 'backward', dy: float32(dy, 'dy'), x: float32(x, 'x'), view: { ...view }, weight: optional(weight, 'weight'), mean, rstd, batchStats, affineGrads };
      const [dxs, dweights, dbiases] = call(message);
      dxOut.set(dxs!);
      if (dweightOut !== null) dweightOut.set(dweights!);
      if (dbiasOut !== null) dbiasOut.set(dbiases!);
    },
  };
}

/**
 * Starts the webgpu backend (Dawn, from the optional `webgpu` package) and makes it available to
 * layers as backend 'webgpu'. Resolves to the adapter's name; rejects with a NormkitError where the
 * package or an adapter is missing. Calls wait at most `timeoutMs` for the GPU (called again on a running
 * backend, it sets the new timeout); a call that times out throws, and its late reply is dropped.
 */
export async function startWebGpu(options: { timeoutMs?: number } = {}): Promise<string> {
  const given: unknown = options.timeoutMs ?? 600_000;
  if (typeof given !== 'number' || !Number.isFinite(given) || given < 1 || given > 2 ** 31 - 1) {
    throw new NormkitError('option', `startWebGpu: timeoutMs must be a number of milliseconds from 1 to ${2 ** 31 - 1}, got ${describeValue(given)}`);
  }
  const timeoutMs = given;
  if (session !== null) {
    session.wait.timeoutMs = timeoutMs;
    return session.adapter;
  }
  quietRuntimeDir();
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = startWorker({ signal, port: port2 }, [port2]);
  try {
    const ready = await new Promise<Ready>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => {
        reject(new NormkitError('backend', `webgpu: the GPU worker exited (code ${code}) before it was ready`));
      });
    });
    if (!ready.ok) throw new NormkitError(ready.code, ready.message);
    // an idle GPU worker must not keep the process alive
    worker.unref();
    port1.unref();
    const wait = { timeoutMs };
    session = { wait, worker, port: port1, adapter: ready.adapter };
    setWebGpuKernels(syncKernels(port1, signal, wait, ready.maxStorageBufferBindingSize));
    return ready.adapter;
  } catch (error) {
    port1.close();
    await worker.terminate();
    throw error;
  }
}

/** Stops the webgpu backend; layers on it fail with a clear error until it is started again. */
export async function stopWebGpu(): Promise<void> {
  const current = session;
  session = null;
  if (current === null) return;
  setWebGpuKernels(null);
  current.port.close();
  await current.worker.terminate();
}
