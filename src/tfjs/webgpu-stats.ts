/**
 * The WGSL that joins tfjs's tensors to normkit's statistics layout (kernels/webgpu/shader.ts: per group
 * two vec4, mean (hi, lo), rstd (hi, lo)*2^-k, then (variance hi, lo scaled by 2^-2E, E, k)):
 * - `pack`: given mean and variance tensors (inference, or a gradient without the forward's statistics),
 *   rstd = 1/sqrt(variance + eps) in float-float, at a scale where neither overflows;
 * - `unpack`: the forward's statistics as tfjs's mean and biased variance tensors;
 * - `statisticsGrad`: dx += dmean/M + dvariance*2*(x - mean)/M, where the batch statistics carry gradient.
 * Each dispatch is submitted on its own (tfjs's queue orders it after the work before it).
 */
import { NormkitError } from '../errors.js';
import type { NormView } from '../core/layout.js';
import { BufferUsage } from '../kernels/webgpu/constants.js';
import type { GpuStats, GpuTensor } from '../kernels/webgpu/engine.js';
import { floatFloatWgsl } from '../kernels/webgpu/float-float.js';
import { floatFloat } from '../kernels/webgpu/dispatch.js';

const WORKGROUP = 64;
/** Bytes of Params below. */
const PARAMS_BYTES = 32;

const source = /* wgsl */ `
struct Params { n: u32, G: u32, B: u32, zero: u32, eps: f32, epsLo: f32, invM: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${floatFloatWgsl(1)}
@group(0) @binding(1) var<storage, read> packMean: array<f32>;
@group(0) @binding(2) var<storage, read> packVariance: array<f32>;
@group(0) @binding(3) var<storage, read_write> packStats: array<vec4<f32>>;

// e = exponent of variance + eps, halved: the float-float rsqrt runs on (variance + eps)*2^-2e, near 1
@compute @workgroup_size(${WORKGROUP})
fn pack(@builtin(global_invocation_id) id: vec3<u32>) {
  let q = id.x;
  if q >= p.n { return; }
  let mean = packMean[q];
  let variance = packVariance[q];
  let a = addS(FFS(variance, 0.0), FFS(p.eps, p.epsLo));
  if !(a.hi > 0.0) || a.hi > 3.0e38 {
    packStats[2u * q] = vec4(mean, 0.0, inverseSqrt(a.hi), 0.0);
    packStats[2u * q + 1u] = vec4(variance, 0.0, 0.0, 0.0);
    return;
  }
  let e = frexp(a.hi).exp / 2;
  let r = rsqrtS(scaleS(a, -2 * e));
  let k = clamp(e + 1 - frexp(r.hi).exp, -126, 126);
  let rstd = scaleS(r, k - e);
  packStats[2u * q] = vec4(mean, 0.0, rstd.hi, rstd.lo);
  packStats[2u * q + 1u] = vec4(variance, 0.0, 0.0, f32(k));
}

@group(0) @binding(4) var<storage, read> unpackStats: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> unpackMean: array<f32>;
@group(0) @binding(6) var<storage, read_write> unpackVariance: array<f32>;

@compute @workgroup_size(${WORKGROUP})
fn unpack(@builtin(global_invocation_id) id: vec3<u32>) {
  let q = id.x;
  if q >= p.n { return; }
  let a = unpackStats[2u * q];
  let b = unpackStats[2u * q + 1u];
  unpackMean[q] = a.x + a.y;
  unpackVariance[q] = pow2ScaleS(b.x + b.y, 2 * i32(b.z));
}

@group(0) @binding(7) var<storage, read> gradX: array<f32>;
@group(0) @binding(8) var<storage, read> gradStats: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> gradDmean: array<f32>;
@group(0) @binding(10) var<storage, read> gradDvariance: array<f32>;
@group(0) @binding(11) var<storage, read_write> gradDx: array<f32>;

// d mean/dx = 1/M, d variance/dx = 2*(x - mean)/M
@compute @workgroup_size(${WORKGROUP})
fn statisticsGrad(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = id.x + id.y * groups.x * ${WORKGROUP}u;
  if i >= p.n { return; }
  let g = (i / p.B) % p.G;
  let m = gradStats[2u * g];
  let centred = (gradX[i] - m.x) - m.y;
  gradDx[i] += gradDmean[g] * p.invM + 2.0 * gradDvariance[g] * p.invM * centred;
}
`;

type Entry = 'pack' | 'unpack' | 'statisticsGrad';

/** The three entry points on one device; a uniform buffer per dispatch, released when the queue has run it. */
export class StatsPipelines {
  readonly #device: GPUDevice;
  readonly #pipelines: Record<Entry, GPUComputePipeline>;

  constructor(device: GPUDevice) {
    this.#device = device;
    const module = device.createShaderModule({ label: 'normkit/tfjs statistics', code: source });
    const make = (entryPoint: Entry) => device.createComputePipeline({ label: `normkit/tfjs ${entryPoint}`, layout: 'auto', compute: { module, entryPoint } });
    this.#pipelines = { pack: make('pack'), unpack: make('unpack'), statisticsGrad: make('statisticsGrad') };
  }

  /** Statistics of `count` groups from mean and variance tensors of `count` values each. */
  pack(stats: GpuStats, mean: GpuTensor, variance: GpuTensor, eps: number): void {
    const [epsHi, epsLo] = floatFloat(eps);
    this.#dispatch('pack', stats.count, { n: stats.count, eps: epsHi, epsLo }, [
      [1, mean.buffer],
      [2, variance.buffer],
      [3, stats.buffer],
    ]);
  }

  /** Mean and biased variance tensors from statistics. */
  unpack(mean: GpuTensor, variance: GpuTensor, stats: GpuStats): void {
    this.#dispatch('unpack', stats.count, { n: stats.count }, [
      [4, stats.buffer],
      [5, mean.buffer],
      [6, variance.buffer],
    ]);
  }

  /** dx += dmean/M + dvariance*2*(x - mean)/M over a BatchNorm view (one block, K = 1). */
  statisticsGrad(dx: GpuTensor, x: GpuTensor, view: NormView, stats: GpuStats, dmean: GpuTensor, dvariance: GpuTensor): void {
    this.#dispatch('statisticsGrad', dx.length, { n: dx.length, G: view.groups, B: view.inner, invM: 1 / (view.span * view.inner) }, [
      [7, x.buffer],
      [8, stats.buffer],
      [9, dmean.buffer],
      [10, dvariance.buffer],
      [11, dx.buffer],
    ]);
  }

  #dispatch(entry: Entry, n: number, params: { n: number; G?: number; B?: number; eps?: number; epsLo?: number; invM?: number }, buffers: [number, GPUBuffer][]): void {
    if (n === 0) return;
    const data = new DataView(new ArrayBuffer(PARAMS_BYTES));
    [params.n, params.G ?? 1, params.B ?? 1, 0].forEach((v, i) => {
      data.setUint32(4 * i, v, true);
    });
    [params.eps ?? 0, params.epsLo ?? 0, params.invM ?? 0].forEach((v, i) => {
      data.setFloat32(16 + 4 * i, v, true);
    });
    const uniform = this.#device.createBuffer({ size: PARAMS_BYTES, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
    this.#device.queue.writeBuffer(uniform, 0, data.buffer);
    const pipeline = this.#pipelines[entry];
    const group = this.#device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: uniform } }, ...buffers.map(([binding, buffer]) => ({ binding, resource: { buffer } }))],
    });
    const workgroups = Math.ceil(n / WORKGROUP);
    const limit = this.#device.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups > limit * limit) throw new NormkitError('length', `normkit/tfjs webgpu: ${n} values exceed one dispatch of this device`);
    const nx = Math.min(workgroups, limit);
    const encoder = this.#device.createCommandEncoder({ label: `normkit/tfjs ${entry}` });
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(nx, Math.ceil(workgroups / nx));
    pass.end();
    this.#device.queue.submit([encoder.finish()]);
    // destroy waits for the submitted work that uses it (WebGPU defers a buffer's destruction past its queued uses)
    uniform.destroy();
  }
}
