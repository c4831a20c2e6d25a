/**
 * The webgpu backend on GPU-resident tensors: the kernel contract's three calls, encoded and
 * submitted without waiting (WebGPU orders a queue's work), and `read`s that download. Pipelines
 * and the bind group layout are made once per device (and per mode and lanes); scratch buffers grow.
 * View letters: A blocks, S span, G groups, B run, K affine entries per group, R = B/K, M = S*B.
 */
import type { NormView } from '../../core/layout.js';
import { affineSize, statsCount } from '../../core/layout.js';
import { NormkitError } from '../../errors.js';
import { BufferUsage, MapMode, ShaderStage } from './constants.js';
import type { Block, ReduceDispatch } from './dispatch.js';
import { affineReduction, elementwiseWorkgroups, grid, groupReduction, lanesOf, reduceWorkgroups, setFloatFloat, writeBlock } from './dispatch.js';
import { AffineGrad, Flag, Mode, PARAMS_BYTES, PARAMS_STRIDE, WORKGROUP, shaderSource } from './shader.js';

/** A float32 tensor in a GPUBuffer (usage STORAGE | COPY_SRC | COPY_DST), `length` values. */
export interface GpuTensor {
  readonly buffer: GPUBuffer;
  readonly length: number;
}

/** Per statistics group on the GPU (32 bytes): mean and rstd as float-float pairs, the biased variance (shader.ts). */
export interface GpuStats {
  readonly buffer: GPUBuffer;
  readonly count: number;
}

export interface StatsValues {
  readonly mean: Float64Array;
  readonly variance: Float64Array;
  readonly rstd: Float64Array;
}

type Entry = 'reduce' | 'reduceColumns' | 'finish' | 'normalize' | 'inputGrad' | 'affineGrad';

interface Binding {
  readonly x: GPUBuffer;
  readonly dy: GPUBuffer | null;
  readonly weight: GPUBuffer | null;
  readonly bias: GPUBuffer | null;
  readonly stats: GPUBuffer;
  readonly out: GPUBuffer | null;
}

interface Dispatch {
  readonly pipeline: GPUComputePipeline;
  readonly binding: Binding;
  readonly block: Omit<Block, 'nx'>;
  readonly workgroups: number;
}

const TENSOR_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/** Bytes per statistics group: two vec4 (shader.ts). */
const STATS_BYTES = 32;

/** Throws a 'length' NormkitError where `length` float32 values exceed a storage binding of `limit` bytes. */
export function checkTensorSize(length: number, limit: number): void {
  const bytes = 4 * length;
  if (bytes > limit) throw new NormkitError('length', `webgpu: ${length} values (${bytes} bytes) exceed this device's maxStorageBufferBindingSize of ${limit} bytes`);
}

/** Given statistics in the shader's layout: mean (hi, lo), rstd as (hi, lo)*2^-k with hi in [1, 2), k. */
export function packStats(mean: Float64Array, rstd: Float64Array): Float32Array {
  const packed = new Float32Array(8 * mean.length);
  for (let q = 0; q < mean.length; q++) {
    const r = rstd[q];
    const k = r > 0 && Number.isFinite(r) ? Math.min(126, Math.max(-126, -Math.floor(Math.log2(r)))) : 0;
    setFloatFloat(packed, 8 * q, mean[q]);
    setFloatFloat(packed, 8 * q + 2, r * 2 ** k);
    packed[8 * q + 7] = k;
  }
  return packed;
}

/** Statistics from the shader's layout: mean = hi + lo, rstd = (hi + lo)*2^-k, variance = (hi + lo)*2^2E. */
export function unpackStats(packed: Float32Array): StatsValues {
  const count = packed.length / 8;
  const mean = new Float64Array(count);
  const variance = new Float64Array(count);
  const rstd = new Float64Array(count);
  for (let q = 0; q < count; q++) {
    const at = 8 * q;
    mean[q] = packed[at] + packed[at + 1];
    rstd[q] = (packed[at + 2] + packed[at + 3]) * 2 ** -packed[at + 7];
    variance[q] = (packed[at + 4] + packed[at + 5]) * 2 ** (2 * packed[at + 6]);
  }
  return { mean, variance, rstd };
}

/**
 * Requests a device that may bind the adapter's largest storage buffers; with `timestamps`, one that can
 * time its passes too where the adapter has 'timestamp-query' (WebGpuNorm.startTiming).
 */
export async function requestDevice(gpu: Pick<GPU, 'requestAdapter'>, options: { timestamps?: boolean } = {}): Promise<GPUDevice> {
  const adapter = await gpu.requestAdapter();
  if (adapter === null) {
    throw new NormkitError(
      'backend',
      'webgpu: no GPU adapter here (in Node without a GPU, install libvulkan1 and Debian chromium and set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json for SwiftShader)',
    );
  }
  const { maxStorageBufferBindingSize, maxBufferSize } = adapter.limits;
  const requiredFeatures: GPUFeatureName[] = options.timestamps === true && adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  return adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize, maxBufferSize }, requiredFeatures });
}

/** Groups of up to this many values get float-float arithmetic per value by default (WebGpuNorm's exactUpTo). */
const EXACT_UP_TO = 256;

export interface WebGpuNormOptions {
  /**
   * Statistics groups of up to this many values (M = S*B) are computed with float-float arithmetic per
   * value (dx within about 1e-7 even where its terms cancel, as with two values per group), larger ones
   * with f32 sums (float-float only for the per-group mean, variance and rstd): for what the exact path
   * costs, see the README's "Cost of float-float". Default EXACT_UP_TO; Infinity: always.
   */
  readonly exactUpTo?: number;
}

export class WebGpuNorm {
  readonly device: GPUDevice;
  readonly exactUpTo: number;
  readonly #layout: GPUBindGroupLayout;
  readonly #modules: Record<1 | 4, GPUShaderModule>;
  readonly #pipelines = new Map<string, GPUComputePipeline>();
  readonly #readDummy: GPUBuffer;
  readonly #writeDummy: GPUBuffer;
  #params: GPUBuffer | null = null;
  #partials: GPUBuffer | null = null;
  #sums: GPUBuffer | null = null;
  /** Bind groups by the buffers they bind: a training loop binds the same ones every step. */
  readonly #bindGroups = new Map<string, GPUBindGroup>();
  readonly #bufferIds = new WeakMap<GPUBuffer, number>();
  #nextId = 0;
  /** Pass timestamps while timing: a query set of 2 per call, and how many calls it holds so far. */
  #timing: { readonly queries: GPUQuerySet; readonly capacity: number; used: number } | null = null;
  #lost: string | null = null;
  #error: string | null = null;

  /** On `device`, or on a new device of `gpu` (default: navigator.gpu); `timestamps`: see requestDevice. */
  static async create(options: { device?: GPUDevice; gpu?: GPU; timestamps?: boolean } & WebGpuNormOptions = {}): Promise<WebGpuNorm> {
    if (options.device !== undefined) return new WebGpuNorm(options.device, options);
    const gpu = options.gpu ?? (typeof navigator === 'undefined' ? undefined : navigator.gpu);
    if (gpu === undefined) throw new NormkitError('backend', 'webgpu: navigator.gpu is missing here (in Node, use createNodeWebGpu from normkit/node)');
    return new WebGpuNorm(await requestDevice(gpu, { timestamps: options.timestamps ?? false }), options);
  }

  constructor(device: GPUDevice, options: WebGpuNormOptions = {}) {
    this.device = device;
    this.exactUpTo = options.exactUpTo ?? EXACT_UP_TO;
    if (!(this.exactUpTo >= 0)) throw new NormkitError('option', `webgpu: exactUpTo must be a number >= 0, got ${String(options.exactUpTo)}`);
    void device.lost.then((info) => {
      this.#lost = info.message === '' ? info.reason : info.message;
    });
    device.onuncapturederror = (event) => {
      this.#error ??= event.error.message;
    };
    const storage = (type: GPUBufferBindingType, binding: number): GPUBindGroupLayoutEntry => ({ binding, visibility: ShaderStage.COMPUTE, buffer: { type } });
    this.#layout = device.createBindGroupLayout({
      label: 'normkit',
      entries: [
        { binding: 0, visibility: ShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: PARAMS_BYTES } },
        ...[1, 2, 3, 4].map((b) => storage('read-only-storage', b)),
        ...[5, 6, 7, 8].map((b) => storage('storage', b)),
      ],
    });
    this.#modules = {
      1: device.createShaderModule({ label: 'normkit f32', code: shaderSource(1) }),
      4: device.createShaderModule({ label: 'normkit vec4', code: shaderSource(4) }),
    };
    this.#readDummy = this.#buffer(16, TENSOR_USAGE);
    this.#writeDummy = this.#buffer(16, TENSOR_USAGE);
  }

  /** A zeroed tensor of `length` values, or one holding `data`. */
  tensor(source: number | Float32Array): GpuTensor {
    this.#usable();
    const length = typeof source === 'number' ? source : source.length;
    checkTensorSize(length, this.device.limits.maxStorageBufferBindingSize);
    const buffer = this.#buffer(Math.max(16, 4 * length), TENSOR_USAGE);
    // Dawn's writeBuffer crashes the process on a SharedArrayBuffer's memory (wasmTensor, worker pools): upload a copy
    if (typeof source !== 'number') this.device.queue.writeBuffer(buffer, 0, source.buffer instanceof ArrayBuffer ? source : source.slice());
    return { buffer, length };
  }

  /** Room for `count` statistics groups, or given statistics (eval, backward): mean and rstd as float-float pairs. */
  stats(source: number | { mean: Float64Array; rstd: Float64Array }): GpuStats {
    this.#usable();
    const count = typeof source === 'number' ? source : source.mean.length;
    const buffer = this.#buffer(Math.max(16, STATS_BYTES * count), TENSOR_USAGE);
    if (typeof source !== 'number') this.device.queue.writeBuffer(buffer, 0, packStats(source.mean, source.rstd));
    return { buffer, count };
  }

  /** Training forward: statistics of x into `stats`, then y. */
  forwardTrain(y: GpuTensor, x: GpuTensor, view: NormView, weight: GpuTensor | null, bias: GpuTensor | null, eps: number, stats: GpuStats): void {
    this.#check(view, [y, x], [weight, bias], stats);
    const lanes = lanesOf(view);
    const group = groupReduction(view, lanes);
    const binding: Binding = { x: x.buffer, dy: null, weight: weight?.buffer ?? null, bias: bias?.buffer ?? null, stats: stats.buffer, out: y.buffer };
    this.#run([
      ...this.#reduction(Mode.shifted, lanes, group, view, eps, 0, 0, binding),
      ...this.#reduction(Mode.recentred, lanes, group, view, eps, 0, 0, binding),
      this.#elementwise('normalize', lanes, view, this.#affineFlags(weight, bias), binding),
    ]);
  }

  /** Forward with given statistics (eval): y = ((x - hi) - lo)*rstd*weight + bias. */
  forwardWithStats(y: GpuTensor, x: GpuTensor, view: NormView, weight: GpuTensor | null, bias: GpuTensor | null, stats: GpuStats): void {
    this.#check(view, [y, x], [weight, bias], stats);
    const binding: Binding = { x: x.buffer, dy: null, weight: weight?.buffer ?? null, bias: bias?.buffer ?? null, stats: stats.buffer, out: y.buffer };
    this.#run([this.#elementwise('normalize', lanesOf(view), view, this.#affineFlags(weight, bias), binding)]);
  }

  /**
   * Backward from dy: two sums per statistics group and one dx pass. BatchNorm (one block, K = 1)
   * shares its sums of dy and dy*xhat between dx and the affine gradients; otherwise the affine
   * entries get their own reduction.
   */
  backward(
    dx: GpuTensor,
    dweight: GpuTensor | null,
    dbias: GpuTensor | null,
    dy: GpuTensor,
    x: GpuTensor,
    view: NormView,
    weight: GpuTensor | null,
    stats: GpuStats,
    batchStats: boolean,
  ): void {
    this.#check(view, [dx, dy, x], [weight, dweight, dbias], stats);
    const grads = dweight !== null || dbias !== null;
    const fused = view.outer === 1 && view.affinePerGroup === 1;
    const groups = statsCount(view);
    const binding: Binding = { x: x.buffer, dy: dy.buffer, weight: weight?.buffer ?? null, bias: null, stats: stats.buffer, out: dx.buffer };
    const weightFlag = weight === null ? 0 : Flag.weight;
    const lanes = lanesOf(view);
    const dispatches: Dispatch[] = [];
    if (batchStats) {
      const flags = fused ? 0 : weightFlag | Flag.weighted;
      dispatches.push(...this.#reduction(Mode.group, lanes, groupReduction(view, lanes), view, 0, flags, 0, binding));
    }
    const affineOffset = batchStats && fused ? 0 : groups;
    if (grads && !(batchStats && fused)) dispatches.push(...this.#reduction(Mode.affine, lanes, affineReduction(view, lanes), view, 0, 0, groups, binding));
    dispatches.push(this.#elementwise('inputGrad', lanes, view, weightFlag | (fused ? Flag.fused : 0) | (batchStats ? Flag.batchStats : 0), binding));
    const entries = affineSize(view);
    for (const [grad, mode] of [
      [dweight, AffineGrad.weight],
      [dbias, AffineGrad.bias],
    ] as const) {
      if (grad === null) continue;
      dispatches.push({
        pipeline: this.#pipeline('affineGrad', mode, 1, true),
        binding: { ...binding, out: grad.buffer },
        block: { view, lanes: 1, eps: 0, reduction: { targets: entries, D: 1, C1: 0, C2: 0, L: 1, stride: 0, count: 0, chunks: 1, columns: false }, flags: 0, sumsOffset: affineOffset },
        workgroups: Math.ceil(entries / WORKGROUP),
      });
    }
    this.#run(dispatches);
  }

  /** Downloads a tensor (into `target` when given). */
  async read(tensor: GpuTensor, target?: Float32Array): Promise<Float32Array> {
    const bytes = await this.#download(tensor.buffer, 4 * tensor.length);
    const values = new Float32Array(bytes);
    if (target === undefined) return values;
    target.set(values);
    return target;
  }

  /** Downloads statistics as float64. */
  async readStats(stats: GpuStats): Promise<StatsValues> {
    return unpackStats(new Float32Array(await this.#download(stats.buffer, STATS_BYTES * stats.count)));
  }

  /** Resolves when the work submitted so far has run; rejects with the first GPU error since the last check. */
  async finish(): Promise<void> {
    this.#usable();
    await this.device.queue.onSubmittedWorkDone();
    this.#raise();
  }

  /**
   * Times the GPU work of the next `capacity` calls (forwardTrain, forwardWithStats, backward: one compute
   * pass each) with timestamp queries; the device needs 'timestamp-query' (create with timestamps: true).
   */
  startTiming(capacity = 1024): void {
    this.#usable();
    if (!this.device.features.has('timestamp-query')) throw new NormkitError('backend', "webgpu: this device has no 'timestamp-query' feature");
    this.#timing?.queries.destroy();
    this.#timing = { queries: this.device.createQuerySet({ type: 'timestamp', count: 2 * capacity }), capacity, used: 0 };
  }

  /** Ends timing: the GPU time of each timed call, in ms. */
  async stopTiming(): Promise<number[]> {
    const timing = this.#timing;
    this.#timing = null;
    if (timing === null || timing.used === 0) {
      timing?.queries.destroy();
      return [];
    }
    const resolved = this.#buffer(16 * timing.used, BufferUsage.COPY_SRC | BufferUsage.QUERY_RESOLVE);
    const encoder = this.device.createCommandEncoder();
    encoder.resolveQuerySet(timing.queries, 0, 2 * timing.used, resolved, 0);
    this.device.queue.submit([encoder.finish()]);
    try {
      const ticks = new BigInt64Array(await this.#download(resolved, 16 * timing.used));
      return Array.from({ length: timing.used }, (_, k) => Number(ticks[2 * k + 1] - ticks[2 * k]) / 1e6);
    } finally {
      resolved.destroy();
      timing.queries.destroy();
    }
  }

  /** Frees this backend's own buffers; the device stays with its owner. */
  destroy(): void {
    for (const b of [this.#params, this.#partials, this.#sums, this.#readDummy, this.#writeDummy]) b?.destroy();
    this.#params = this.#partials = this.#sums = null;
    this.#bindGroups.clear();
  }

  #buffer(size: number, usage: number): GPUBuffer {
    return this.device.createBuffer({ size: Math.ceil(size / 4) * 4, usage });
  }

  #usable(): void {
    if (this.#lost !== null) throw new NormkitError('backend', `webgpu: the device was lost (${this.#lost}); create a new backend on a new device`);
  }

  #raise(): void {
    const error = this.#error;
    if (error === null) return;
    this.#error = null;
    throw new NormkitError('backend', `webgpu: ${error}`);
  }

  #check(view: NormView, tensors: GpuTensor[], affine: (GpuTensor | null)[], stats: GpuStats): void {
    this.#usable();
    const n = view.outer * view.span * view.groups * view.inner;
    for (const t of tensors) {
      if (t.length !== n) throw new NormkitError('length', `webgpu: expected tensors of ${n} values for the view, got ${t.length}`);
    }
    const entries = affineSize(view);
    for (const t of affine) {
      if (t !== null && t.length !== entries) throw new NormkitError('length', `webgpu: expected affine tensors of ${entries} values, got ${t.length}`);
    }
    if (stats.count !== statsCount(view)) throw new NormkitError('length', `webgpu: expected statistics for ${statsCount(view)} groups, got ${stats.count}`);
    for (const t of [...tensors, ...affine]) {
      if (t === null) continue;
      if ((t.buffer.usage & BufferUsage.STORAGE) === 0) throw new NormkitError('option', 'webgpu: a tensor needs a GPUBuffer with STORAGE usage');
      if (t.buffer.size < 4 * t.length) throw new NormkitError('length', `webgpu: a buffer of ${t.buffer.size} bytes cannot hold ${t.length} float32 values`);
    }
    if (stats.buffer.size < STATS_BYTES * stats.count) throw new NormkitError('length', `webgpu: a statistics buffer of ${stats.buffer.size} bytes cannot hold ${stats.count} groups`);
    const buffers = [...tensors, ...affine].flatMap((t) => (t === null ? [] : [t.buffer]));
    if (new Set(buffers).size !== buffers.length) throw new NormkitError('option', 'webgpu: outputs and inputs must be distinct buffers');
  }

  #affineFlags(weight: GpuTensor | null, bias: GpuTensor | null): number {
    return (weight === null ? 0 : Flag.weight) | (bias === null ? 0 : Flag.bias);
  }

  /** Whether a view's per-value arithmetic is float-float: groups of at most exactUpTo values. */
  #exact(view: NormView): boolean {
    return view.span * view.inner <= this.exactUpTo;
  }

  #pipeline(entry: Entry, mode: number, lanes: 1 | 4, exact: boolean): GPUComputePipeline {
    const key = `${entry}/${mode}/${lanes}/${exact ? 'exact' : 'f32'}`;
    let pipeline = this.#pipelines.get(key);
    if (pipeline === undefined) {
      pipeline = this.device.createComputePipeline({
        label: `normkit ${key}`,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [this.#layout] }),
        compute: { module: this.#modules[lanes], entryPoint: entry, constants: { MODE: mode, EXACT: exact ? 1 : 0 } },
      });
      this.#pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  #reduction(mode: number, lanes: 1 | 4, reduction: ReduceDispatch, view: NormView, eps: number, flags: number, sumsOffset: number, binding: Binding): Dispatch[] {
    const block = { view, lanes, eps, reduction, flags, sumsOffset };
    return [
      { pipeline: this.#pipeline(reduction.columns ? 'reduceColumns' : 'reduce', mode, lanes, this.#exact(view)), binding, block, workgroups: reduceWorkgroups(reduction) },
      { pipeline: this.#pipeline('finish', mode, lanes, this.#exact(view)), binding, block, workgroups: reduction.targets },
    ];
  }

  #elementwise(entry: 'normalize' | 'inputGrad', lanes: 1 | 4, view: NormView, flags: number, binding: Binding): Dispatch {
    const n = view.outer * view.span * view.groups * view.inner;
    return { pipeline: this.#pipeline(entry, 0, lanes, this.#exact(view)), binding, block: { view, lanes, eps: 0, reduction: null, flags, sumsOffset: 0 }, workgroups: elementwiseWorkgroups(n, lanes) };
  }

  /** Grows a scratch buffer to at least `bytes`; queue order keeps reuse across calls safe. */
  #scratch(current: GPUBuffer | null, bytes: number, usage: number): GPUBuffer {
    if (current !== null && current.size >= bytes) return current;
    current?.destroy();
    return this.#buffer(Math.max(256, bytes * 2), usage);
  }

  #run(dispatches: Dispatch[]): void {
    const live = dispatches.filter((d) => d.workgroups > 0);
    if (live.length === 0) return;
    const maxPerDimension = this.device.limits.maxComputeWorkgroupsPerDimension;
    // partials: a vec4 of sums per chunk, and (first statistics pass) a vec4 holding the chunk's largest |x|
    const partialBytes = Math.max(...live.map((d) => 32 * (d.block.reduction === null ? 0 : d.block.reduction.targets * d.block.reduction.chunks)));
    const sumBytes = Math.max(...live.map((d) => 16 * (d.block.sumsOffset + (d.block.reduction?.targets ?? 0))));
    this.#params = this.#scratch(this.#params, PARAMS_STRIDE * live.length, BufferUsage.UNIFORM | BufferUsage.COPY_DST);
    this.#partials = this.#scratch(this.#partials, partialBytes, BufferUsage.STORAGE);
    this.#sums = this.#scratch(this.#sums, sumBytes, BufferUsage.STORAGE);
    const params = new DataView(new ArrayBuffer(PARAMS_STRIDE * live.length));
    const grids = live.map((d, i) => {
      const [nx, ny] = grid(d.workgroups, maxPerDimension);
      writeBlock(params, PARAMS_STRIDE * i, { ...d.block, nx });
      return [nx, ny] as const;
    });
    this.device.queue.writeBuffer(this.#params, 0, new Uint8Array(params.buffer));
    const encoder = this.device.createCommandEncoder({ label: 'normkit' });
    const timing = this.#timing;
    const slot = timing !== null && timing.used < timing.capacity ? timing.used++ : -1;
    const pass = encoder.beginComputePass(
      slot < 0 || timing === null ? {} : { timestampWrites: { querySet: timing.queries, beginningOfPassWriteIndex: 2 * slot, endOfPassWriteIndex: 2 * slot + 1 } },
    );
    live.forEach((d, i) => {
      const group = this.#bindGroup(d.binding);
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, group, [PARAMS_STRIDE * i]);
      pass.dispatchWorkgroups(grids[i][0], grids[i][1]);
    });
    pass.end();
    this.device.queue.submit([encoder.finish()]);
  }

  #bindGroup(b: Binding): GPUBindGroup {
    const params = this.#params!;
    const read = [b.x, b.dy, b.weight, b.bias].map((buffer) => buffer ?? this.#readDummy);
    const write = [b.stats, this.#partials!, this.#sums!, b.out ?? this.#writeDummy];
    const key = [params, ...read, ...write].map((buffer) => this.#idOf(buffer)).join(',');
    let group = this.#bindGroups.get(key);
    if (group === undefined) {
      // bounded: entries of destroyed buffers are never looked up again
      if (this.#bindGroups.size >= 256) this.#bindGroups.clear();
      group = this.device.createBindGroup({
        layout: this.#layout,
        entries: [
          { binding: 0, resource: { buffer: params, size: PARAMS_BYTES } },
          ...[...read, ...write].map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
        ],
      });
      this.#bindGroups.set(key, group);
    }
    return group;
  }

  #idOf(buffer: GPUBuffer): number {
    let id = this.#bufferIds.get(buffer);
    if (id === undefined) {
      id = ++this.#nextId;
      this.#bufferIds.set(buffer, id);
    }
    return id;
  }

  async #download(source: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    this.#usable();
    const staging = this.#buffer(Math.max(16, bytes), BufferUsage.MAP_READ | BufferUsage.COPY_DST);
    try {
      const encoder = this.device.createCommandEncoder();
      encoder.copyBufferToBuffer(source, 0, staging, 0, Math.ceil(bytes / 4) * 4);
      this.device.queue.submit([encoder.finish()]);
      await staging.mapAsync(MapMode.READ);
      this.#raise();
      return staging.getMappedRange(0, Math.ceil(bytes / 4) * 4).slice(0, bytes);
    } finally {
      staging.destroy();
    }
  }
}
