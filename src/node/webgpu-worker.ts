/** The GPU worker behind the synchronous webgpu backend: answers each Call on its port, then wakes the caller. */
import { parentPort, workerData } from 'node:worker_threads';
import { affineSize, statsCount } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import type { AsyncNormKernels } from '../kernels/contract.js';
import { webgpuTypedKernels } from '../kernels/webgpu/typed-kernels.js';
import { createNodeWebGpu } from './dawn.js';
import type { Call, Ready, Reply, WorkerInit } from './webgpu-protocol.js';

const { signal, port } = workerData as WorkerInit;

function failure(error: unknown): { ok: false; code: NormkitError['code']; message: string } {
  if (error instanceof NormkitError) return { ok: false, code: error.code, message: error.message };
  return { ok: false, code: 'backend', message: `webgpu: ${error instanceof Error ? error.message : String(error)}` };
}

async function run(kernels: AsyncNormKernels, call: Call): Promise<(Float32Array | Float64Array | null)[]> {
  const count = statsCount(call.view);
  switch (call.op) {
    case 'forwardTrain': {
      const outputs = [new Float32Array(call.x.length), new Float64Array(count), new Float64Array(count), new Float64Array(count)] as const;
      await kernels.forwardTrain(outputs[0], call.x, call.view, call.weight, call.bias, call.eps, outputs[1], outputs[2], outputs[3]);
      return [...outputs];
    }
    case 'forwardWithStats': {
      const y = new Float32Array(call.x.length);
      await kernels.forwardWithStats(y, call.x, call.view, call.weight, call.bias, call.mean, call.rstd);
      return [y];
    }
    case 'backward': {
      const dx = new Float32Array(call.x.length);
      const dweight = call.affineGrads ? new Float32Array(affineSize(call.view)) : null;
      const dbias = call.affineGrads ? new Float32Array(affineSize(call.view)) : null;
      await kernels.backward(dx, dweight, dbias, call.dy, call.x, call.view, call.weight, call.mean, call.rstd, call.batchStats);
      return [dx, dweight, dbias];
    }
  }
}

async function main(): Promise<void> {
  let kernels: AsyncNormKernels;
  try {
    const engine = await createNodeWebGpu();
    kernels = webgpuTypedKernels(engine);
    const { vendor, architecture, description } = engine.device.adapterInfo;
    parentPort?.postMessage({
      ok: true,
      adapter: [vendor, architecture, description].filter((s) => s !== '').join(' '),
      maxStorageBufferBindingSize: engine.device.limits.maxStorageBufferBindingSize,
    } satisfies Ready);
  } catch (error) {
    parentPort?.postMessage(failure(error) satisfies Ready);
    return;
  }
  port.on('message', (call: Call) => {
    void run(kernels, call)
      .then((outputs): Reply => ({ id: call.id, ok: true, outputs }), (error: unknown): Reply => ({ id: call.id, ...failure(error) }))
      .then((reply) => {
        const transfer = reply.ok ? reply.outputs.flatMap((o) => (o === null ? [] : [o.buffer as ArrayBuffer])) : [];
        port.postMessage(reply, transfer);
        Atomics.add(signal, 0, 1);
        Atomics.notify(signal, 0);
      });
  });
}

void main();
