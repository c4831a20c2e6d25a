/**
 * Runs the systems side by side: per shape, every system is checked against the expected output,
 * then the ops are timed interleaved (one call of each system per round) so drift hits all alike.
 */
import { Random } from '../random.js';
import type { Expected } from './expected.js';
import { normalizedError } from '../conformance/compare.js';
import { expected } from './expected.js';
import type { Bandwidth } from './probe.js';
import { callsPerSample, median, timeCalls } from './timing.js';
import type { BenchData, Op, Prepared, Row, ShapeSpec, System } from './types.js';
import { bytesPerElement, ops } from './types.js';
import { numel } from '../core/float.js';

export interface BenchOptions {
  readonly reps: number;
  /** Stop repeating a (system, op) once its calls took this long: after 3 samples, or after 1 when one call alone exceeds it. */
  readonly budgetMs: number;
  /** Largest normalized error a float32 system may show against the float64 expectation. */
  readonly tolerance: number;
  readonly log: (line: string) => void;
  /**
   * Probes the copy bandwidth; called before the shape's systems are prepared and after its rounds, and the
   * shape's DRAM bound is at the mean of the two (else at `bandwidth.best`). Not inside the rounds: a 256 MB
   * copy there flushes the caches and slows the samples after it.
   */
  readonly probe?: () => Bandwidth;
}

export interface CheckResult {
  readonly system: string;
  readonly threads: number;
  readonly shape: string;
  readonly layout: string;
  readonly op: Op;
  readonly error: number;
  readonly ok: boolean;
}

export function makeData(spec: ShapeSpec, seed = 1): BenchData {
  const random = new Random(seed);
  const n = numel(spec.shape);
  const affine = spec.norm === 'layer' ? spec.shape[spec.shape.length - 1] : spec.shape[1];
  const channels = spec.shape[1];
  const f32 = (values: Float64Array) => Float32Array.from(values);
  return {
    spec,
    x: f32(random.normals(n, 0.5, 2)),
    dy: f32(random.normals(n)),
    weight: f32(random.normals(affine, 1, 0.2)),
    bias: f32(random.normals(affine, 0, 0.2)),
    runningMean: f32(random.normals(channels, 0.5, 0.1)),
    runningVar: f32(random.normals(channels, 4, 0.3).map(Math.abs)),
    eps: 1e-5,
  };
}

interface Entry {
  readonly system: System;
  readonly prepared: Prepared;
  readonly op: Op;
  /** ms per call over `calls` calls of the op */
  readonly time: (calls: number) => Promise<number>;
  readonly times: number[];
  spent: number;
  calls: number;
}

async function check(entry: Pick<Entry, 'system' | 'prepared' | 'op'>, truth: Expected, data: BenchData, tolerance: number): Promise<CheckResult> {
  const result = await entry.prepared.result(entry.op);
  const error = normalizedError(result, truth[entry.op]);
  const { system, op } = entry;
  return { system: system.name, threads: system.threads, shape: data.spec.name, layout: system.layout, op, error, ok: error <= tolerance };
}

export async function benchShape(spec: ShapeSpec, systems: readonly System[], bandwidth: Bandwidth, options: BenchOptions): Promise<{ rows: Row[]; checks: CheckResult[] }> {
  const before = options.probe?.();
  const data = makeData(spec);
  const truth = expected(data);
  const entries: Entry[] = [];
  const checks: CheckResult[] = [];
  const prepared: Prepared[] = [];
  for (const system of systems.filter((s) => s.supports(spec))) {
    let p: Prepared;
    try {
      p = await system.prepare(data);
    } catch (error) {
      options.log(`  ${system.name}: not run (${error instanceof Error ? error.message : String(error)})`);
      continue;
    }
    prepared.push(p);
    for (const op of ops) {
      const fn = p.run[op];
      if (fn === undefined) continue;
      const verdict = await check({ system, prepared: p, op }, truth, data, options.tolerance);
      checks.push(verdict);
      if (!verdict.ok) {
        options.log(`  ${system.name} ${op}: output check FAILED (normalized error ${verdict.error.toExponential(2)}); not timed`);
        continue;
      }
      await p.beforeSample?.();
      const selfTimed = p.time?.bind(p);
      const time = selfTimed === undefined ? (count: number) => timeCalls(fn, count) : (count: number) => selfTimed(op, count);
      const { calls, once } = await callsPerSample(time);
      p.afterSample?.();
      entries.push({ system, prepared: p, op, time, times: calls === 1 ? [once / (p.repeat ?? 1)] : [], spent: calls === 1 ? once : 0, calls });
    }
  }
  for (let round = 0; round < options.reps; round++) {
    for (const entry of entries) {
      const enough = entry.times.length >= 3 || (entry.times.length >= 1 && entry.times[0] * entry.calls > options.budgetMs);
      if (enough && entry.spent > options.budgetMs) continue;
      await entry.prepared.beforeSample?.();
      const ms = await entry.time(entry.calls);
      entry.prepared.afterSample?.();
      entry.times.push(ms / (entry.prepared.repeat ?? 1));
      entry.spent += ms * entry.calls;
    }
  }
  // the bound at the copy bandwidth around this shape's rounds, so drift of the machine's bandwidth over the run hits it as the systems
  const after = options.probe?.();
  const copyBandwidth = before === undefined || after === undefined ? bandwidth.best : (before.best + after.best) / 2;
  if (before !== undefined && after !== undefined) options.log(`  copy probe before and after the rounds: ${before.best.toFixed(1)}, ${after.best.toFixed(1)} GB/s`);
  // kernels alone, by the GPU's clock, beside the wall-clock rows of the systems that can say
  const gpuRows: Row[] = [];
  for (const e of entries) {
    const time = await e.prepared.gpuTime?.(e.op);
    if (time === undefined) continue;
    gpuRows.push({ system: `${e.system.name.replace(/-resident$/, '')}-kernels`, threads: e.system.threads, shape: spec.name, layout: spec.layout, op: e.op, median_ms: time.median, min_ms: time.min });
  }
  for (const p of prepared) p.dispose();
  const rows: Row[] = entries.map((e) => ({
    system: e.system.name,
    threads: e.system.threads,
    shape: spec.name,
    layout: spec.layout,
    op: e.op,
    median_ms: median(e.times),
    min_ms: Math.min(...e.times),
  }));
  rows.push(...gpuRows);
  // the roofline: minimal bytes at the copy bandwidth
  const n = data.x.length;
  for (const op of ops) {
    if (!rows.some((r) => r.op === op)) continue;
    const ms = (n * bytesPerElement[op]) / (copyBandwidth * 1e6);
    rows.push({ system: 'dram-bound', threads: 0, shape: spec.name, layout: spec.layout, op, median_ms: ms, min_ms: ms });
    if (bandwidth.gpu !== undefined) {
      const gpuMs = (n * bytesPerElement[op]) / (bandwidth.gpu * 1e6);
      rows.push({ system: 'gpu-bound', threads: 0, shape: spec.name, layout: spec.layout, op, median_ms: gpuMs, min_ms: gpuMs });
    }
  }
  return { rows, checks };
}
