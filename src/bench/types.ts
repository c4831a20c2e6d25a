/** The benchmark's vocabulary: shapes, operations, systems under test. */
import type { Layout } from '../core/layout.js';

export type Op = 'forward' | 'backward' | 'forward+backward' | 'inference';
export const ops: readonly Op[] = ['forward', 'backward', 'forward+backward', 'inference'];

export type NormKind = 'batch' | 'layer' | 'group';

export interface ShapeSpec {
  /** A, B, C (BatchNorm), LN (LayerNorm), GN (GroupNorm, 32 groups) */
  readonly name: string;
  readonly norm: NormKind;
  /** Logical shape, channels first. */
  readonly shape: readonly number[];
  /** Layout normkit runs in; peers run in their own. */
  readonly layout: Layout;
  readonly groups?: number;
}

export const shapeSpecs: readonly ShapeSpec[] = [
  { name: 'A', norm: 'batch', shape: [32, 64, 56, 56], layout: 'channels-first' },
  { name: 'A', norm: 'batch', shape: [32, 64, 56, 56], layout: 'channels-last' },
  { name: 'B', norm: 'batch', shape: [256, 1024], layout: 'channels-first' },
  { name: 'C', norm: 'batch', shape: [8, 16, 8, 8], layout: 'channels-first' },
  { name: 'LN', norm: 'layer', shape: [8192, 1024], layout: 'channels-first' },
  { name: 'GN', norm: 'group', shape: [32, 64, 56, 56], layout: 'channels-first', groups: 32 },
];

/** Inputs shared by every system, in logical channels-first order, float32. */
export interface BenchData {
  readonly spec: ShapeSpec;
  readonly x: Float32Array;
  readonly dy: Float32Array;
  /** Affine parameters: per channel (BatchNorm, GroupNorm) or per normalized element (LayerNorm). */
  readonly weight: Float32Array;
  readonly bias: Float32Array;
  /** Running statistics for inference (BatchNorm). */
  readonly runningMean: Float32Array;
  readonly runningVar: Float32Array;
  readonly eps: number;
}

/** One system set up for one shape: a callable per supported op, and what it computed (channels first). */
export interface Prepared {
  readonly run: Partial<Record<Op, () => unknown>>;
  /** y for forward and inference, dx for backward and forward+backward. */
  result(op: Op): Promise<Float32Array> | Float32Array;
  /** GPU time of one op by the device's own clock (timestamp queries), ms: median and min over a few runs. */
  gpuTime?(op: Op): Promise<{ median: number; min: number }>;
  /** Operations each call of `run[op]` performs (a GPU queues them and waits once); times are per operation. */
  readonly repeat?: number;
  /** Times `calls` calls of an op by the system's own clock, ms per call (a peer in another process), in place of timing `run[op]` here. */
  time?(op: Op, calls: number): Promise<number>;
  /** Untimed set-up before each sample (a peer with global state puts its own back). */
  beforeSample?(): Promise<void>;
  /** Untimed clean-up after each sample (a system that changes global state undoes it for the others). */
  afterSample?(): void;
  dispose(): void;
}

export interface System {
  readonly name: string;
  readonly threads: number;
  readonly layout: Layout;
  supports(spec: ShapeSpec): boolean;
  prepare(data: BenchData): Promise<Prepared>;
}

export interface Row {
  readonly system: string;
  readonly threads: number;
  readonly shape: string;
  readonly layout: Layout;
  readonly op: Op;
  readonly median_ms: number;
  readonly min_ms: number;
}

/** Minimal bytes moved per element (float32): forward reads x, writes y; backward reads x, dy, writes dx. */
export const bytesPerElement: Readonly<Record<Op, number>> = { forward: 8, backward: 12, 'forward+backward': 20, inference: 8 };
