/**
 * The webgpu backend's GPU-resident benchmark system (`normkit-webgpu` with copies is a normkit
 * system over the synchronous contract, normkit.ts): steps queued and timed until the GPU has
 * finished, their GPU time alone by timestamp queries, and the GPU's copy bandwidth.
 */
import type { Layout } from '../core/layout.js';
import { affineSize, statsCount } from '../core/layout.js';
import { BufferUsage } from '../kernels/webgpu/constants.js';
import type { WebGpuNorm } from '../kernels/webgpu/engine.js';
import { physicalOf, runningStats } from './expected.js';
import { median } from './timing.js';
import type { BenchData, Op, Prepared, System } from './types.js';

function residentSystem(engine: WebGpuNorm, layout: Layout): System {
  return {
    name: 'normkit-webgpu-resident',
    threads: 1,
    layout,
    supports: (spec) => spec.layout === layout,
    prepare: (data: BenchData) => {
      const { spec } = data;
      const { view, arrange, back } = physicalOf(spec);
      const n = data.x.length;
      const k = affineSize(view);
      const count = statsCount(view);
      const [x, dy, weight, bias] = [arrange(data.x), arrange(data.dy), data.weight, data.bias].map((a) => engine.tensor(a));
      const [y, dx, dweight, dbias] = [engine.tensor(n), engine.tensor(n), engine.tensor(k), engine.tensor(k)];
      const stats = engine.stats(count);
      const running = engine.stats(runningStats(data, view));
      const forward = () => {
        engine.forwardTrain(y, x, view, weight, bias, data.eps, stats);
      };
      const backward = () => {
        engine.backward(dx, dweight, dbias, dy, x, view, weight, stats, true);
      };
      // each op's work, queued without waiting
      const steps: Partial<Record<Op, () => void>> = {
        forward,
        backward,
        'forward+backward': () => {
          forward();
          backward();
        },
      };
      if (spec.norm === 'batch') {
        steps.inference = () => {
          engine.forwardWithStats(y, x, view, weight, bias, running);
        };
      }
      forward();
      return calibrate(engine, forward, backward).then((repeat) => ({
        run: Object.fromEntries(
          Object.entries(steps).map(([op, step]) => [
            op,
            () => {
              for (let i = 0; i < repeat; i++) step();
              return engine.finish();
            },
          ]),
        ),
        repeat,
        ...(engine.device.features.has('timestamp-query') && {
          gpuTime: (op: Op) => gpuTime(engine, steps[op] ?? (() => undefined), op === 'forward+backward' ? 2 : 1, repeat === 1 ? 3 : 16),
        }),
        result: async (op: Op) => {
          steps[op]?.();
          const values = await engine.read(op === 'forward' || op === 'inference' ? y : dx);
          return back(values);
        },
        dispose: () => {
          for (const t of [x, dy, weight, bias, y, dx, dweight, dbias, stats, running]) t.buffer.destroy();
        },
      }) satisfies Prepared);
    },
  };
}

/**
 * Steps per timed call: waiting for the GPU after each step would time the wait (in Dawn for Node, a
 * wait can cost milliseconds), while a training loop queues its steps. So queue `repeat` steps per wait,
 * with `repeat` chosen from the marginal cost of a step (batches of 8 and 40) so a batch runs about 200 ms.
 */
async function calibrate(engine: WebGpuNorm, forward: () => void, backward: () => void): Promise<number> {
  const batch = async (steps: number) => {
    const start = performance.now();
    for (let i = 0; i < steps; i++) {
      forward();
      backward();
    }
    await engine.finish();
    return performance.now() - start;
  };
  // a slow adapter (SwiftShader on a CPU) has no wait latency worth removing
  if ((await batch(2)) > 100) return 1;
  const step = Math.max(1e-3, ((await batch(40)) - (await batch(8))) / 32);
  return Math.max(1, Math.min(2000, Math.round(200 / step)));
}

/** GPU time of a step (`calls` kernel calls) by timestamp queries: median and min over `steps` steps. */
async function gpuTime(engine: WebGpuNorm, step: () => void, calls: number, steps: number): Promise<{ median: number; min: number }> {
  engine.startTiming(steps * calls);
  for (let i = 0; i < steps; i++) step();
  const passes = await engine.stopTiming();
  const perStep = Array.from({ length: steps }, (_, i) => passes.slice(i * calls, (i + 1) * calls).reduce((a, b) => a + b, 0));
  return { median: median(perStep), min: Math.min(...perStep) };
}

/** A grid-stride vec4 copy: the load shape the kernels use, so its bandwidth is what they can reach through WebGPU. */
const copyShader = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  for (var i = id.x; i < arrayLength(&dst); i += groups.x * 256u) { dst[i] = src[i]; }
}`;

/**
 * The GPU's copy bandwidth through WebGPU (bytes read + written per second, GB/s): a compute copy of
 * 256 MiB (Dawn's copyBufferToBuffer reached a third of it on an H100), timed as the marginal cost of a
 * copy between waits of 8 and 40 copies (1 and 3 on a slow adapter), so the wait's latency drops out.
 */
export async function probeGpuBandwidth(engine: WebGpuNorm, reps = 5): Promise<number> {
  const { device } = engine;
  const bytes = Math.min(256 * 1024 * 1024, device.limits.maxStorageBufferBindingSize);
  const [src, dst] = [0, 1].map(() => device.createBuffer({ size: bytes, usage: BufferUsage.STORAGE }));
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: copyShader }), entryPoint: 'main' } });
  const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [src, dst].map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const workgroups = Math.min(device.limits.maxComputeWorkgroupsPerDimension, 4096);
  const copies = async (times: number) => {
    const start = performance.now();
    const encoder = device.createCommandEncoder();
    for (let i = 0; i < times; i++) {
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(workgroups);
      pass.end();
    }
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - start;
  };
  const slow = (await copies(2)) > 20;
  const [few, many] = slow ? [1, 3] : [8, 40];
  const samples: number[] = [];
  for (let r = 0; r < (slow ? 1 : reps); r++) samples.push(((await copies(many)) - (await copies(few))) / (many - few));
  src.destroy();
  dst.destroy();
  return (2 * bytes) / (Math.max(1e-6, median(samples)) * 1e6);
}

/** The GPU-resident systems for both layouts on `engine`. */
export function webgpuResidentSystems(engine: WebGpuNorm): System[] {
  return (['channels-first', 'channels-last'] as const).map((layout) => residentSystem(engine, layout));
}
