/**
 * Communicators for ranks that live in one thread (tests, simulations): each all-reduce resolves once
 * every rank has called it. A rank that does not call within `timeoutMs` (default 60 s), or that
 * aborts, fails the step on every rank with an error naming it; the group stays failed after that
 * (as a NCCL communicator does after an abort): every later call gets the same error.
 */
import { NormkitError } from '../../errors.js';
import type { CollectiveTag, Communicator } from './communicator.js';
import { DEFAULT_TIMEOUT_MS, checkTimeout, checkWorldSize, sumInRankOrder } from './communicator.js';

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

interface Round {
  readonly values: (Float64Array | null)[];
  readonly tags: (CollectiveTag | undefined)[];
  readonly waiting: Waiter[];
  timer: ReturnType<typeof setTimeout> | null;
}

export interface InProcessGroupOptions {
  /** How long a rank waits for the others in one all-reduce, in ms (default 60,000). */
  timeoutMs?: number;
}

/** `worldSize` communicators (ranks 0..worldSize-1) joined to one in-process group. */
export function inProcessGroup(worldSize: number, options: InProcessGroupOptions = {}): Communicator[] {
  checkWorldSize(worldSize, 'inProcessGroup');
  const timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'inProcessGroup');
  // rounds[k] collects the k-th call of every rank
  const rounds: Round[] = [];
  const calls = new Array<number>(worldSize).fill(0);
  let finished = 0;
  let failure: NormkitError | null = null;
  const fail = (error: NormkitError): void => {
    failure ??= error;
    for (const round of rounds.splice(0)) {
      if (round.timer !== null) clearTimeout(round.timer);
      for (const w of round.waiting) w.reject(failure);
    }
  };
  const complete = (round: Round): void => {
    if (round.timer !== null) clearTimeout(round.timer);
    const parts = round.values.filter((v): v is Float64Array => v !== null);
    const length = parts[0].length;
    const tag = round.tags[0];
    const odd = round.values.findIndex((p, r) => p?.length !== length || round.tags[r]?.layer !== tag?.layer || round.tags[r]?.what !== tag?.what);
    if (odd !== -1) {
      const said = (r: number): string => `${round.tags[r] === undefined ? 'an all-reduce' : `${round.tags[r]?.what} of layer ${round.tags[r]?.layer}`} with ${round.values[r]?.length} values`;
      const error = new NormkitError('shape', `all-reduce: rank ${odd} called ${said(odd)}, rank 0 ${said(0)}`);
      for (const w of round.waiting) w.reject(error);
      fail(error);
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
    allReduce(values: Float64Array, tag?: CollectiveTag): Promise<void> {
      if (failure !== null) return Promise.reject(failure);
      const call = calls[rank]++;
      const k = call - finished;
      while (rounds.length <= k) rounds.push({ values: new Array<Float64Array | null>(worldSize).fill(null), tags: new Array<CollectiveTag | undefined>(worldSize), waiting: [], timer: null });
      const round = rounds[k];
      round.values[rank] = values;
      round.tags[rank] = tag;
      return new Promise<void>((resolve, reject) => {
        round.waiting.push({ resolve, reject });
        if (round.waiting.length === worldSize) {
          rounds.shift();
          finished++;
          complete(round);
        } else if (round.timer === null) {
          round.timer = setTimeout(() => {
            const missing = round.values.flatMap((v, r) => (v === null ? [r] : []));
            fail(new NormkitError('backend', `all-reduce #${call + 1}: rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not call within ${timeoutMs} ms`));
          }, timeoutMs);
        }
      });
    },
    abort(reason: string): void {
      fail(new NormkitError('backend', `rank ${rank} failed: ${reason}`));
    },
  }));
}
