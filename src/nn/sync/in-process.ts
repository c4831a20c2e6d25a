/** Communicators for ranks that live in one thread (tests, simulations): each all-reduce resolves once every rank has called it. */
import { NormkitError } from '../../errors.js';
import type { Communicator } from './communicator.js';
import { sumInRankOrder } from './communicator.js';

interface Round {
  readonly values: (Float64Array | null)[];
  readonly waiting: { resolve: () => void; reject: (error: Error) => void }[];
}

/** `worldSize` communicators (ranks 0..worldSize-1) joined to one in-process group. */
export function inProcessGroup(worldSize: number): Communicator[] {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new NormkitError('option', `inProcessGroup: worldSize must be a positive integer, got ${worldSize}`);
  // rounds[k] collects the k-th call of every rank
  const rounds: Round[] = [];
  const calls = new Array<number>(worldSize).fill(0);
  let finished = 0;
  const complete = (round: Round): void => {
    const parts = round.values.filter((v): v is Float64Array => v !== null);
    const length = parts[0].length;
    if (parts.some((p) => p.length !== length)) {
      const error = new NormkitError('shape', `all-reduce: ranks passed different lengths (${parts.map((p) => p.length).join(', ')})`);
      for (const w of round.waiting) w.reject(error);
      return;
    }
    const sum = new Float64Array(length);
    sumInRankOrder(sum, parts);
    for (const p of parts) p.set(sum);
    for (const w of round.waiting) w.resolve();
  };
  return Array.from({ length: worldSize }, (_, rank) => ({
    worldSize,
    rank,
    allReduce(values: Float64Array): Promise<void> {
      const k = calls[rank]++ - finished;
      while (rounds.length <= k) rounds.push({ values: new Array<Float64Array | null>(worldSize).fill(null), waiting: [] });
      const round = rounds[k];
      round.values[rank] = values;
      return new Promise<void>((resolve, reject) => {
        round.waiting.push({ resolve, reject });
        if (round.waiting.length === worldSize) {
          rounds.shift();
          finished++;
          complete(round);
        }
      });
    },
  }));
}
