/**
 * The synchronous webgpu backend in Node.js: Dawn runs on a worker thread; each kernel call posts
 * its inputs, blocks on a shared flag until the worker has downloaded the results, and takes the
 * reply with receiveMessageOnPort. This keeps the one synchronous contract for layers, conformance and bench.
 */
import { extname } from 'node:path';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { NormkitError } from '../errors.js';
import type { NormKernels } from '../kernels/contract.js';
import { setWebGpuKernels } from '../kernels/webgpu/sync-slot.js';
import { checkTensorSize } from '../kernels/webgpu/engine.js';
import { float32 } from '../kernels/webgpu/typed-kernels.js';
import { quietRuntimeDir } from './dawn.js';
import type { Call, Ready, Reply, WorkerInit } from './webgpu-protocol.js';

interface Session {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly adapter: string;
}

let session: Session | null = null;

/** The worker beside this file, with this file's extension: .js in the package, .ts run from source (as the tests do). */
function startWorker(workerData: WorkerInit, transferList: MessagePort[]): Worker {
  const entry = new URL(`./webgpu-worker${extname(import.meta.url)}`, import.meta.url);
  // --input-type (node --input-type=module -e ...) is refused by workers, which run a file
  const execArgv = process.execArgv.filter((arg) => !arg.startsWith('--input-type'));
  return new Worker(entry, { workerData, transferList, execArgv });
}

function syncKernels(port: MessagePort, signal: Int32Array, timeoutMs: number, maxBindingBytes: number): NormKernels {
  const call = (message: Call): (Float32Array | Float64Array | null)[] => {
    checkTensorSize(message.x.length, maxBindingBytes);
    Atomics.store(signal, 0, 0);
    try {
      port.postMessage(message);
    } catch (error) {
      throw new NormkitError('backend', `webgpu: the inputs could not be sent to the GPU worker (${error instanceof Error ? error.message : String(error)})`);
    }
    if (Atomics.wait(signal, 0, 0, timeoutMs) === 'timed-out') {
      throw new NormkitError('backend', `webgpu: the GPU worker did not answer within ${timeoutMs} ms`);
    }
    const received = receiveMessageOnPort(port);
    if (received === undefined) throw new NormkitError('backend', 'webgpu: the GPU worker woke the caller without a reply');
    const reply = received.message as Reply;
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
      const message: Call = { op: 'backward', dy: float32(dy, 'dy'), x: float32(x, 'x'), view: { ...view }, weight: optional(weight, 'weight'), mean, rstd, batchStats, affineGrads };
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
 * package or an adapter is missing. Calls wait at most `timeoutMs` for the GPU.
 */
export async function startWebGpu(options: { timeoutMs?: number } = {}): Promise<string> {
  if (session !== null) return session.adapter;
  const timeoutMs = options.timeoutMs ?? 600_000;
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
    session = { worker, port: port1, adapter: ready.adapter };
    setWebGpuKernels(syncKernels(port1, signal, timeoutMs, ready.maxStorageBufferBindingSize));
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
