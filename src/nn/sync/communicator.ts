/**
 * What SyncBatchNorm needs from a process group: its size, this process's rank, and an all-reduce
 * (element-wise sum over ranks) of a Float64Array of sums. Implementations add the ranks' values in
 * rank order 0..n-1, so every rank gets the same bits and runs stay reproducible.
 */
import { NormkitError } from '../../errors.js';
import { describeValue } from '../../tensor.js';

/** Which collective a call is, so a group can check every rank makes the same one (layer id, and what it carries). */
export interface CollectiveTag {
  /** The calling layer's id: layers made in the same order on every rank get the same ids. */
  readonly layer: number;
  readonly what: string;
}

export interface Communicator {
  readonly worldSize: number;
  readonly rank: number;
  /** Replaces `values` with the element-wise sum over all ranks; every rank calls it in the same order with the same length. */
  allReduce(values: Float64Array, tag?: CollectiveTag): Promise<void>;
  /** Every rank's `values` (one length on every rank), in rank order; groups without it get an all-reduce of rank slots. */
  allGather?(values: Float64Array, tag?: CollectiveTag): Promise<Float64Array[]>;
  /** Tells the other ranks this rank failed mid-step (they get an error naming it, not a wait for the timeout). */
  abort?(reason: string): void;
}

/** The wait for other ranks when a group is not told otherwise. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** The most ranks a group may have (a bound before allocating anything per rank). */
export const MAX_WORLD_SIZE = 4096;

/** out = sum over ranks of parts[r], added in rank order (the one summation order of every implementation). */
export function sumInRankOrder(out: Float64Array, parts: readonly ArrayLike<number>[]): void {
  out.fill(0);
  for (const part of parts) for (let i = 0; i < out.length; i++) out[i] += part[i];
}

/** A world size as every group takes it: an integer in [1, MAX_WORLD_SIZE]. */
export function checkWorldSize(worldSize: unknown, who: string): number {
  if (typeof worldSize !== 'number' || !Number.isInteger(worldSize) || worldSize < 1 || worldSize > MAX_WORLD_SIZE) {
    throw new NormkitError('option', `${who}: worldSize must be an integer in [1, ${MAX_WORLD_SIZE}], got ${describeValue(worldSize)}`);
  }
  return worldSize;
}

/** A timeout in milliseconds: a positive finite number up to 2^31 - 1 (what timers hold). */
export function checkTimeout(timeoutMs: unknown, who: string): number {
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 2 ** 31 - 1) {
    throw new NormkitError('option', `${who}: timeoutMs must be a number of milliseconds in (0, ${2 ** 31 - 1}], got ${describeValue(timeoutMs)}`);
  }
  return timeoutMs;
}

/**
 * A caller's communicator, checked once and read once: an object with an integer worldSize >= 1, an
 * integer rank in [0, worldSize) and an allReduce function.
 */
export function readCommunicator(given: unknown, who: string): { readonly communicator: Communicator; readonly worldSize: number; readonly rank: number } {
  if (typeof given !== 'object' || given === null) throw new NormkitError('option', `${who}: expected a communicator { worldSize, rank, allReduce }, got ${describeValue(given)}`);
  const { worldSize, rank, allReduce, allGather, abort } = given as Partial<Record<keyof Communicator, unknown>>;
  checkWorldSize(worldSize, `${who}: communicator`);
  const world = worldSize as number;
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 0 || rank >= world) {
    throw new NormkitError('option', `${who}: communicator rank must be an integer in [0, ${world}), got ${describeValue(rank)}`);
  }
  if (typeof allReduce !== 'function') throw new NormkitError('option', `${who}: communicator.allReduce must be a function, got ${describeValue(allReduce)}`);
  if (allGather !== undefined && typeof allGather !== 'function') throw new NormkitError('option', `${who}: communicator.allGather must be a function or absent, got ${describeValue(allGather)}`);
  if (abort !== undefined && typeof abort !== 'function') throw new NormkitError('option', `${who}: communicator.abort must be a function or absent, got ${describeValue(abort)}`);
  return { communicator: given as Communicator, worldSize: world, rank };
}
