// Shape A forward+backward GPU time (timestamp queries, as the bench's normkit-webgpu-kernels) on one device,
// interleaved, 3 runs each: this checkout's default (float-float per value up to 256 values per group), with
// exactUpTo: Infinity, and optionally the kernels of another checkout (the README's "before": commit 15d984d).
// Usage: node --import tsx --require ./scripts/tsx-workers.cjs scripts/webgpu-float-float-cost.ts [BASE_CHECKOUT]
// (BASE_CHECKOUT e.g. from `git worktree add /tmp/base 15d984d`; on a machine without a GPU, SwiftShader:
// VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median } from '../src/bench/timing.ts';
import { normView, statsCount } from '../src/core/layout.ts';
import { WebGpuNorm, requestDevice } from '../src/kernels/webgpu/engine.ts';
import { dawnGpu } from '../src/node/dawn.ts';

type Engine = Pick<WebGpuNorm, 'tensor' | 'stats' | 'forwardTrain' | 'backward' | 'finish' | 'startTiming' | 'stopTiming'>;

const device = await requestDevice(await dawnGpu(), { timestamps: true });
const engines: Record<string, Engine> = { default: new WebGpuNorm(device), exact: new WebGpuNorm(device, { exactUpTo: Infinity }) };
const base = process.argv[2];
if (base !== undefined) {
  const module = (await import(pathToFileURL(resolve(base, 'src/kernels/webgpu/engine.ts')).href)) as { WebGpuNorm: new (d: GPUDevice) => Engine };
  engines.before = new module.WebGpuNorm(device);
}
const shape = [32, 64, 56, 56];
const n = shape.reduce((a, b) => a * b, 1);
const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 2 + 1);
const dy = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 1.3));
const w = Float32Array.from({ length: 64 }, (_, i) => 1 + i / 64);
const times: Record<string, number[]> = {};
for (const layout of ['channels-first', 'channels-last'] as const) {
  const view = normView({ kind: 'batch' }, layout === 'channels-first' ? shape : [32, 56, 56, 64], layout);
  const prepared = Object.entries(engines).map(([name, e]) => {
    const [xs, dys, ws, bs] = [e.tensor(x), e.tensor(dy), e.tensor(w), e.tensor(w)];
    const [ys, dxs, dws, dbs] = [e.tensor(n), e.tensor(n), e.tensor(64), e.tensor(64)];
    const stats = e.stats(statsCount(view));
    const step = () => {
      e.forwardTrain(ys, xs, view, ws, bs, 1e-5, stats);
      e.backward(dxs, dws, dbs, dys, xs, view, ws, stats, true);
    };
    return { name, e, step };
  });
  // compile pipelines, warm up
  for (const p of prepared) {
    p.step();
    await p.e.finish();
  }
  for (let rep = 0; rep < 3; rep++) {
    for (const p of prepared) {
      p.e.startTiming(2);
      p.step();
      const passes = await p.e.stopTiming();
      (times[`${layout} ${p.name}`] ??= []).push(passes[0] + passes[1]);
    }
  }
}
for (const [k, v] of Object.entries(times)) {
  console.log(`${k.padEnd(30)} median ${median(v).toFixed(0)} ms  min ${Math.min(...v).toFixed(0)} ms`);
}
process.exit(0);
