/**
 * The benchmark inside a browser page (bundled and served by run.ts): the same harness, normkit
 * systems and tfjs peers as `normkit bench`, on 1 thread and on Web Workers (the page is
 * cross-origin isolated), tfjs's wasm backend at the thread count asked for, and normkit's
 * GPU-resident webgpu rows where the browser gives an adapter.
 */
import { WebGpuNorm, startWasmWorkers, stopWasmWorkers } from '../../index.js';
import { wasmPool } from '../../kernels/wasm/backend.js';
import type { CheckResult } from '../harness.js';
import { benchShape } from '../harness.js';
import { layerSystems } from '../layer.js';
import { normkitSystems } from '../normkit.js';
import type { Tf, TfLoader } from '../peers/tfjs.js';
import { tfjsSystem } from '../peers/tfjs.js';
import { probeBandwidth } from '../probe.js';
import { medianMs } from '../timing.js';
import type { Row, System } from '../types.js';
import { shapeSpecs } from '../types.js';
import { probeGpuBandwidth, webgpuResidentSystems } from '../webgpu.js';
import type { PageRequest, PageResult, ThreadProbe } from './protocol.js';

/** Where run.ts serves tfjs-backend-wasm's binaries. */
const TFJS_WASM_PATH = '/tfjs-wasm/';

async function loadTf(backend: 'cpu' | 'wasm', wasmThreads: number): Promise<Tf> {
  const tf = await import('@tensorflow/tfjs');
  if (backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(TFJS_WASM_PATH);
    // read by the backend once, when it starts: so one page load runs tfjs-wasm at one thread count
    wasm.setThreadsCount(wasmThreads);
  }
  await tf.setBackend(backend);
  await tf.ready();
  return tf;
}

async function tfjsWasmThreadsCount(): Promise<number> {
  return (await import('@tensorflow/tfjs-backend-wasm')).getThreadsCount();
}

/** tfjs-wasm's own count after start-up, and a matMul (XNNPACK's thread pool) and a BatchNorm on shape A timed at it. */
async function probeTfjsThreads(threads: number): Promise<ThreadProbe> {
  const tf = await loadTf('wasm', threads);
  const time = (fn: () => Float32Array | Int32Array | Uint8Array) => medianMs(fn, 5);
  const a = tf.randomNormal([1024, 1024]);
  const x = tf.randomNormal([32, 56, 56, 64]);
  const [mean, variance, gamma, beta] = [tf.zeros([64]), tf.ones([64]), tf.ones([64]), tf.zeros([64])];
  const matMulMs = time(() => tf.tidy(() => tf.matMul(a, a)).dataSync());
  const batchNormMs = time(() => tf.tidy(() => tf.batchNorm(x, mean, variance, beta, gamma, 1e-5)).dataSync());
  tf.dispose([a, x, mean, variance, gamma, beta]);
  return { asked: threads, reported: await tfjsWasmThreadsCount(), crossOriginIsolated, matMulMs, batchNormMs };
}

async function runBench(request: PageRequest): Promise<PageResult> {
  const log: string[] = [];
  const threads = await startWasmWorkers(request.threads);
  try {
    const engine = request.webgpu && 'gpu' in navigator ? await WebGpuNorm.create({ timestamps: true }).catch((error: unknown) => {
      log.push(`webgpu: not run (${error instanceof Error ? error.message : String(error)})`);
      return null;
    }) : null;
    if (request.webgpu && !('gpu' in navigator)) log.push('webgpu: not run (no navigator.gpu)');
    if (engine !== null) log.push(`webgpu adapter: ${[engine.device.adapterInfo.vendor, engine.device.adapterInfo.architecture, engine.device.adapterInfo.description].filter((s) => s !== '').join(' ') || 'unnamed'}`);
    // tfjs-wasm started first, so its rows carry the thread count it reports rather than the one asked for
    const tfjsWasmThreads = request.peers ? await loadTf('wasm', request.tfjsWasmThreads).then(tfjsWasmThreadsCount) : 1;
    const tfjsLoader = (threadsShown: number): TfLoader => ({ load: (backend) => loadTf(backend, request.tfjsWasmThreads), threads: threadsShown });
    const systems: System[] = [
      ...normkitSystems(wasmPool(), false),
      ...layerSystems(wasmPool()),
      ...(engine === null ? [] : webgpuResidentSystems(engine)),
      ...(request.peers ? [tfjsSystem('cpu', false, tfjsLoader(1)), tfjsSystem('wasm', false, tfjsLoader(tfjsWasmThreads))] : []),
    ].filter((system) => request.systems.length === 0 || request.systems.some((prefix) => system.name.startsWith(prefix)));
    const bandwidth = { ...probeBandwidth(), ...(engine === null ? {} : { gpu: await probeGpuBandwidth(engine) }) };
    log.push(`page: crossOriginIsolated ${String(crossOriginIsolated)}, ${navigator.hardwareConcurrency} logical cores, normkit wasm on ${threads} threads${request.peers ? `, tfjs-wasm on ${tfjsWasmThreads} (asked ${request.tfjsWasmThreads})` : ''}; copy probe ${bandwidth.best.toFixed(1)} GB/s`);
    const rows: Row[] = [];
    const checks: CheckResult[] = [];
    for (const spec of shapeSpecs.filter((s) => request.shapes.includes(s.name))) {
      const result = await benchShape(spec, systems, bandwidth, { reps: request.reps, budgetMs: request.budgetMs, tolerance: 1e-3, log: (line) => log.push(line), probe: () => probeBandwidth(3) });
      rows.push(...result.rows);
      checks.push(...result.checks);
    }
    engine?.destroy();
    return { rows, checks, log };
  } finally {
    await stopWasmWorkers();
  }
}

declare global {
  interface Window {
    normkitBench?: { run: (request: PageRequest) => Promise<PageResult>; probeTfjsThreads: (threads: number) => Promise<ThreadProbe> };
  }
}

window.normkitBench = { run: runBench, probeTfjsThreads };
