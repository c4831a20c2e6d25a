/** The one rank and channel check of every layer with a channel axis: a 'rank' or 'channels' NormkitError naming what came. */
import type { Layout } from '../core/layout.js';
import { splitChannels } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import { formatShape } from '../tensor.js';

/** Accepted input ranks: a list (BatchNorm, InstanceNorm), or a minimum (GroupNorm: (N, C, ...)). */
export type RankRule = { readonly ranks: readonly number[] } | { readonly atLeast: number };

/** `expected 2D or 3D input`, as PyTorch words it. */
function rankText(ranks: readonly number[]): string {
  return ranks.map((r) => `${r}D`).join(' or ');
}

/**
 * Throws unless `shape` has an accepted rank and `channels` channels in `layout`. An input of rank
 * `unbatchedRank` is one unbatched sample (InstanceNorm): its channels are read as if batched.
 */
export function checkRankAndChannels(name: string, shape: readonly number[], rule: RankRule, layout: Layout, channels: number, unbatchedRank: number | null = null): void {
  if ('ranks' in rule && !rule.ranks.includes(shape.length)) {
    throw new NormkitError('rank', `${name}: expected ${rankText(rule.ranks)} input (got ${shape.length}D input)`);
  }
  if ('atLeast' in rule && shape.length < rule.atLeast) {
    throw new NormkitError('rank', `${name}: expected input of at least ${rule.atLeast}D (N, C, ...), got ${shape.length}D input`);
  }
  const { c } = splitChannels(shape.length === unbatchedRank ? [1, ...shape] : shape, layout);
  if (c !== channels) {
    throw new NormkitError('channels', `${name}: expected ${channels} channels (${layout}), got ${c} in input of size ${formatShape(shape)}`);
  }
}
