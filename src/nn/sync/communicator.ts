/**
 * What SyncBatchNorm needs from a process group: its size, this process's rank, and an all-reduce
 * (element-wise sum over ranks) of a Float64Array of sums. Implementations add the ranks' values in
 * rank order 0..n-1, so every rank gets the same bits and runs stay reproducible.
 */
export interface Communicator {
  readonly worldSize: number;
  readonly rank: number;
  /** Replaces `values` with the element-wise sum over all ranks; every rank calls it in the same order with the same length. */
  allReduce(values: Float64Array): Promise<void>;
}

/** out = sum over ranks of parts[r], added in rank order (the one summation order of every implementation). */
export function sumInRankOrder(out: Float64Array, parts: readonly ArrayLike<number>[]): void {
  out.fill(0);
  for (const part of parts) for (let i = 0; i < out.length; i++) out[i] += part[i];
}
