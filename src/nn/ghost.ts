/**
 * Ghost BatchNorm (Hoffer et al. 2017; TabNet's GhostBatchNorm): in training the batch is split along
 * dim 0 into consecutive ghost batches, each one BatchNorm step in order. `ghostSplit` 'fixed' (the
 * default): ghost batches of `virtualBatchSize` samples, the last may be smaller; 'chunk': TabNet's
 * `x.chunk(ceil(N / v))`, torch.chunk's rule: ghost batches of ceil(N / ceil(N / v)) samples, the last
 * may be smaller, and there may be fewer than ceil(N / v) of them. Samples are outermost in both layouts, so a ghost batch is a contiguous
 * run of the input, and equal ghost batches are one view with the ghost batch as its outer axis.
 */
import type { NormView } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import { describeValue, formatShape } from '../tensor.js';

/** A contiguous run of whole samples, elements [start, end), seen as `view` (outer = its ghost batches). */
export interface Segment {
  readonly start: number;
  readonly end: number;
  readonly view: NormView;
}

/** How a batch splits into ghost batches: 'fixed' (v samples each) or 'chunk' (TabNet's torch.chunk(ceil(N / v))). */
export type GhostSplit = 'fixed' | 'chunk';

export function checkGhostSplit(name: string, value: unknown): GhostSplit {
  if (value === undefined || value === 'fixed' || value === 'chunk') return value ?? 'fixed';
  throw new NormkitError('option', `${name}: ghostSplit must be 'fixed' or 'chunk', got ${describeValue(value)}`);
}

/** Samples per ghost batch for a batch of n (the last ghost batch holds the rest, n % size when not 0). */
export function ghostBatchSize(n: number, virtualBatchSize: number | null, split: GhostSplit): number {
  const v = Math.min(virtualBatchSize ?? n, n);
  // torch.chunk(k): chunks of ceil(n / k) samples
  return split === 'chunk' ? Math.ceil(n / Math.ceil(n / v)) : v;
}

export function checkVirtualBatchSize(name: string, value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new NormkitError('option', `${name}: virtualBatchSize must be a positive integer or null, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * The ghost batches of a BatchNorm input of `shape` (view: the whole batch, outer 1). `oneEach`: one
 * segment per ghost batch (a step that depends on the one before, as renorm does); otherwise the
 * full ghost batches form one segment and the remainder another. Throws, before anything runs,
 * when a ghost batch has one value per channel.
 */
export function ghostSegments(view: NormView, shape: readonly number[], virtualBatchSize: number | null, split: GhostSplit, oneEach: boolean): Segment[] {
  const n = shape[0];
  const v = ghostBatchSize(n, virtualBatchSize, split);
  const perSample = (view.span * view.groups * view.inner) / n;
  const spanPerSample = view.span / n;
  const last = n % v === 0 ? v : n % v;
  if (last * spanPerSample * view.inner <= 1) {
    const ghostShape = [last, ...shape.slice(1)];
    throw new NormkitError('single-value', `Expected more than 1 value per channel when training, got input size ${formatShape(ghostShape)} (the last ghost batch of ${formatShape(shape)})`);
  }
  const segment = (first: number, samples: number, count: number): Segment => ({
    start: first * perSample,
    end: (first + samples * count) * perSample,
    view: { ...view, outer: count, span: spanPerSample * samples },
  });
  const full = Math.floor(n / v);
  const segments: Segment[] = [];
  if (oneEach) for (let k = 0; k < full; k++) segments.push(segment(k * v, v, 1));
  else segments.push(segment(0, v, full));
  if (n % v !== 0) segments.push(segment(full * v, n % v, 1));
  return segments;
}
