/**
 * What the webgpu kernels dispatch for a view: the reduction targets and their chunks, the
 * elementwise lanes, and the parameter blocks the shader reads. Pure arithmetic, no GPU.
 * View letters: A blocks, S span, G groups, B run, K affine entries per group, R = B/K, M = S*B.
 */
import type { NormView } from '../../core/layout.js';
import { CHUNK, COLUMN_TILE, WORKGROUP } from './shader.js';

/** Chunks per target at most: beyond it each invocation sums more than 16 values. */
const MAX_CHUNKS = 1024;

/** Offsets, lengths and counts in loads (`lanes` values each). */
export interface ReduceDispatch {
  readonly targets: number;
  readonly D: number;
  readonly C1: number;
  readonly C2: number;
  readonly L: number;
  readonly stride: number;
  readonly count: number;
  readonly chunks: number;
  /** A target's loads lie `stride` apart (L = 1): reduceColumns, 64 targets per workgroup. */
  readonly columns: boolean;
}

/** Rows per chunk in column reductions: 16 per row lane. */
const COLUMN_CHUNK = (WORKGROUP / COLUMN_TILE) * 16;
/**
 * Fewer first-level workgroups than this leave a large GPU mostly idle (few targets of moderate size,
 * e.g. BatchNorm1d on 256x1024): chunks are then split further, down to one load per invocation
 * (a row per lane in column mode).
 */
const MIN_WORKGROUPS = 256;

function inLoads(r: Omit<ReduceDispatch, 'chunks' | 'columns'>, lanes: number): ReduceDispatch {
  const count = r.count / lanes;
  const L = r.L / lanes;
  const stride = r.stride / lanes;
  const columns = L === 1 && stride > 1;
  const blocks = columns ? Math.ceil(r.targets / COLUMN_TILE) : r.targets;
  const bySize = Math.ceil(count / (columns ? COLUMN_CHUNK : CHUNK));
  const byParallelism = Math.min(Math.ceil(MIN_WORKGROUPS / blocks), Math.floor(count / (columns ? WORKGROUP / COLUMN_TILE : WORKGROUP)));
  const chunks = Math.min(MAX_CHUNKS, Math.max(1, bySize, byParallelism));
  return { targets: r.targets, D: r.D, C1: r.C1 / lanes, C2: r.C2 / lanes, L, stride, count, chunks, columns };
}

/** Workgroups of a reduction's first level. */
export function reduceWorkgroups(r: ReduceDispatch): number {
  return (r.columns ? Math.ceil(r.targets / COLUMN_TILE) : r.targets) * r.chunks;
}

/** Per statistics group (a, g): the (s, b) elements at a*S*G*B + g*B + s*G*B + b. */
export function groupReduction(view: NormView, lanes: 1 | 4): ReduceDispatch {
  const { outer: A, span: S, groups: G, inner: B } = view;
  return inLoads({ targets: A * G, D: G, C1: S * G * B, C2: B, L: B, stride: G * B, count: S * B }, lanes);
}

/** Per affine entry (g, k): the (a, s, e) elements at g*B + k*R + (a*S + s)*G*B + e. */
export function affineReduction(view: NormView, lanes: 1 | 4): ReduceDispatch {
  const { outer: A, span: S, groups: G, inner: B, affinePerGroup: K } = view;
  const R = B / K;
  return inLoads({ targets: G * K, D: K, C1: B, C2: R, L: R, stride: G * B, count: A * S * R }, lanes);
}

/** Values per load: 4 when every run of 4 shares its statistics and affine entry (B and R = B/K multiples of 4). */
export function lanesOf(view: NormView): 1 | 4 {
  const R = view.inner / view.affinePerGroup;
  return view.inner % 4 === 0 && R % 4 === 0 ? 4 : 1;
}

/** A dispatch of `workgroups` as a 2-D grid within the per-dimension limit; the shader linearises it with nx. */
export function grid(workgroups: number, maxPerDimension: number): [number, number] {
  const nx = Math.min(workgroups, maxPerDimension);
  return [nx, Math.ceil(workgroups / nx)];
}

export function elementwiseWorkgroups(n: number, lanes: number): number {
  return Math.ceil(n / (WORKGROUP * lanes));
}

export interface Block {
  readonly view: NormView;
  readonly lanes: 1 | 4;
  readonly eps: number;
  readonly reduction: ReduceDispatch | null;
  readonly flags: number;
  readonly nx: number;
  readonly sumsOffset: number;
}

/** A float64 value as the float-float pair (hi, lo) of f32 with hi + lo = v to about 2^-48. */
export function floatFloat(v: number): [number, number] {
  const hi = Math.fround(v);
  return [hi, Math.fround(v - hi)];
}

/** floatFloat(v) written to target[at] and target[at + 1], allocating nothing (f32 stores round as Math.fround). */
export function setFloatFloat(target: Float32Array, at: number, v: number): void {
  const hi = Math.fround(v);
  target[at] = hi;
  target[at + 1] = v - hi;
}

/** Writes one Params block (shader.ts) at `offset` of `target`; its `zero` field is 0 (float-float.ts's barrier). */
export function writeBlock(target: DataView, offset: number, block: Block): void {
  const { outer: A, span: S, groups: G, inner: B, affinePerGroup: K } = block.view;
  const r = block.reduction;
  const u32 = [S, G, B, K, B / K, (A * S * G * B) / block.lanes];
  u32.forEach((v, i) => {
    target.setUint32(offset + 4 * i, v, true);
  });
  const [invM, invMLo] = floatFloat(1 / (S * B));
  target.setFloat32(offset + 24, invM, true);
  target.setFloat32(offset + 28, invMLo, true);
  const rest = [r?.targets ?? 0, r?.D ?? 1, r?.C1 ?? 0, r?.C2 ?? 0, r?.L ?? 1, r?.count ?? 0, r?.chunks ?? 1, block.flags, block.nx, block.sumsOffset, r?.stride ?? 0, 0];
  rest.forEach((v, i) => {
    target.setUint32(offset + 32 + 4 * i, v, true);
  });
  const [eps, epsLo] = floatFloat(block.eps);
  target.setFloat32(offset + 80, eps, true);
  target.setFloat32(offset + 84, epsLo, true);
}
