/**
 * The one normalization core: every norm is a view of its input as [A, S, G, B] in memory order.
 * Statistics are kept per (a, g) and reduced over (s, b); the affine entry of an element is
 * g*K + floor(b / (B/K)). BatchNorm, InstanceNorm, GroupNorm and LayerNorm are four settings of it.
 */
import { NormkitError } from '../errors.js';
import { numel } from './float.js';

export interface NormView {
  /** A: independent blocks, each with its own statistics (samples; 1 for BatchNorm). */
  readonly outer: number;
  /** S: reduced axis between the blocks and the groups (the batch for BatchNorm, space for channels-last). */
  readonly span: number;
  /** G: statistics groups inside a block (channels, or channel groups). */
  readonly groups: number;
  /** B: contiguous run reduced with its group. */
  readonly inner: number;
  /** K: affine entries per group; K divides B and each covers B/K consecutive elements. */
  readonly affinePerGroup: number;
}

/** Channels on axis 1 (`(N, C, ...)`) or last (`(N, ..., C)`), row-major either way. */
export type Layout = 'channels-first' | 'channels-last';

export type Reduction =
  | { readonly kind: 'batch' }
  | { readonly kind: 'instance' }
  | { readonly kind: 'group'; readonly groups: number }
  | { readonly kind: 'layer'; readonly normalizedRank: number };

/** Splits an input shape into batch N, channels C and spatial size P for the given layout. */
export function splitChannels(shape: readonly number[], layout: Layout): { n: number; c: number; p: number } {
  const n = shape[0] ?? 1;
  const c = layout === 'channels-first' ? shape[1] ?? 1 : shape[shape.length - 1] ?? 1;
  const p = layout === 'channels-first' ? numel(shape.slice(2)) : numel(shape.slice(1, -1));
  return { n, c, p };
}

/** The view of `shape` that realises `reduction`: the single place where a norm is chosen. */
export function normView(reduction: Reduction, shape: readonly number[], layout: Layout): NormView {
  const firsts = layout === 'channels-first';
  switch (reduction.kind) {
    case 'batch': {
      const { n, c, p } = splitChannels(shape, layout);
      return firsts
        ? { outer: 1, span: n, groups: c, inner: p, affinePerGroup: 1 }
        : { outer: 1, span: n * p, groups: c, inner: 1, affinePerGroup: 1 };
    }
    case 'instance': {
      const { n, c, p } = splitChannels(shape, layout);
      return firsts
        ? { outer: n, span: 1, groups: c, inner: p, affinePerGroup: 1 }
        : { outer: n, span: p, groups: c, inner: 1, affinePerGroup: 1 };
    }
    case 'group': {
      const { n, c, p } = splitChannels(shape, layout);
      const perGroup = c / reduction.groups;
      if (!Number.isInteger(perGroup)) {
        throw new NormkitError('option', 'num_channels must be divisible by num_groups');
      }
      return firsts
        ? { outer: n, span: 1, groups: reduction.groups, inner: perGroup * p, affinePerGroup: perGroup }
        : { outer: n, span: p, groups: reduction.groups, inner: perGroup, affinePerGroup: perGroup };
    }
    case 'layer': {
      const d = numel(shape.slice(shape.length - reduction.normalizedRank));
      return { outer: numel(shape) / d, span: 1, groups: 1, inner: d, affinePerGroup: d };
    }
  }
}

/** Number of statistics groups (A*G): the length of `mean` and `rstd`. */
export function statsCount(view: NormView): number {
  return view.outer * view.groups;
}

/** Number of values each statistic reduces over (S*B). */
export function reduceSize(view: NormView): number {
  return view.span * view.inner;
}

/** Number of affine entries (G*K): the length of `weight` and `bias`. */
export function affineSize(view: NormView): number {
  return view.groups * view.affinePerGroup;
}

/** Which statistics group the element at memory index `i` belongs to. */
export function statsIndexOf(view: NormView, i: number): number {
  const g = Math.floor(i / view.inner) % view.groups;
  const a = Math.floor(i / (view.inner * view.groups * view.span));
  return a * view.groups + g;
}

/** Which affine entry scales the element at memory index `i`. */
export function affineIndexOf(view: NormView, i: number): number {
  const g = Math.floor(i / view.inner) % view.groups;
  const b = i % view.inner;
  return g * view.affinePerGroup + Math.floor(b / (view.inner / view.affinePerGroup));
}
