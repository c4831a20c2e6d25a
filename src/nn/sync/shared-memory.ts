/**
 * Communicators for ranks on different threads (Node worker_threads, Web Workers) over one
 * SharedArrayBuffer: each rank writes its values into its own slot, waits at a barrier
 * (Atomics.wait: a worker thread, never a browser's main thread), sums every slot in rank order,
 * and waits again so no slot is overwritten while another rank still reads it.
 *
 * A failed step (a rank that does not arrive within the timeout, or one that aborts) marks the group
 * failed in shared memory and wakes every waiting rank: each gets an error naming the failed rank, and
 * every later all-reduce fails the same way, so no rank ever sums a stale slot from the failed step.
 */
import { NormkitError } from '../../errors.js';
import type { Communicator } from './communicator.js';
import { DEFAULT_TIMEOUT_MS, checkTimeout, checkWorldSize, sumInRankOrder } from './communicator.js';

/** What every rank's thread receives (structured-clonable: post it in workerData). */
export interface SharedGroup {
  readonly worldSize: number;
  /** Most values one all-reduce may carry. */
  readonly capacity: number;
  /** [arrived, generation, failure, failed rank, then per rank: length, call, barriers passed] as Int32, then worldSize slots of `capacity` float64. */
  readonly buffer: SharedArrayBuffer;
}

const ARRIVED = 0;
const GENERATION = 1;
/** 0 while healthy; a Failure code once a step failed */
const FAILURE = 2;
const FAILED_RANK = 3;
const PER_RANK = 4;
/** per rank: the length of its values, its all-reduce call number, the barriers it has entered */
const LENGTH = 0;
const CALL = 1;
const BARRIERS = 2;
const WORDS_PER_RANK = 3;

const TIMED_OUT = 1;
const ABORTED = 2;

/** The most bytes a group's buffer may take (1 GiB: a bound before allocating). */
const MAX_GROUP_BYTES = 2 ** 30;

function slotsOffset(worldSize: number): number {
  // the float64 slots start 8-byte aligned after the Int32 control words
  return Math.ceil(((PER_RANK + WORDS_PER_RANK * worldSize) * 4) / 8) * 8;
}

export function createSharedGroup(worldSize: number, capacity: number): SharedGroup {
  checkWorldSize(worldSize, 'createSharedGroup');
  if (!Number.isInteger(capacity) || capacity < 1) throw new NormkitError('option', `createSharedGroup: capacity must be a positive integer, got ${capacity}`);
  const bytes = slotsOffset(worldSize) + worldSize * capacity * 8;
  if (bytes > MAX_GROUP_BYTES) throw new NormkitError('size', `createSharedGroup: ${worldSize} ranks of ${capacity} values need ${bytes} bytes, more than the limit of ${MAX_GROUP_BYTES}`);
  return { worldSize, capacity, buffer: new SharedArrayBuffer(bytes) };
}

/** The communicator of `rank` in `group`; `timeoutMs` (default 60,000) bounds each wait for the other ranks. */
export function sharedMemoryCommunicator(group: SharedGroup, rank: number, timeoutMs = DEFAULT_TIMEOUT_MS): Communicator {
  const { worldSize, capacity, buffer } = group;
  checkTimeout(timeoutMs, 'sharedMemoryCommunicator');
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new NormkitError('option', `sharedMemoryCommunicator: rank must be in [0, ${worldSize}), got ${rank}`);
  const control = new Int32Array(buffer, 0, PER_RANK + WORDS_PER_RANK * worldSize);
  const word = (r: number, which: number): number => PER_RANK + r * WORDS_PER_RANK + which;
  const slots = Array.from({ length: worldSize }, (_, r) => new Float64Array(buffer, slotsOffset(worldSize) + r * capacity * 8, capacity));
  let calls = 0;
  let barriers = 0;
  const failed = (): NormkitError | null => {
    const failure = Atomics.load(control, FAILURE);
    if (failure === 0) return null;
    const who = Atomics.load(control, FAILED_RANK);
    const what = failure === ABORTED ? 'failed mid-step (aborted)' : `did not arrive within ${timeoutMs} ms`;
    return new NormkitError('backend', `all-reduce: rank ${who} ${what}; the group is closed (rank ${rank} stopped)`);
  };
  const markFailed = (code: number, who: number): void => {
    // the first failure is the one every rank reports
    if (Atomics.compareExchange(control, FAILURE, 0, code) === 0) Atomics.store(control, FAILED_RANK, who);
    Atomics.notify(control, GENERATION);
  };
  // a generation-counting barrier: the last rank to arrive starts the next generation and wakes the rest
  const barrier = (): void => {
    barriers++;
    Atomics.store(control, word(rank, BARRIERS), barriers);
    const generation = Atomics.load(control, GENERATION);
    if (Atomics.add(control, ARRIVED, 1) === worldSize - 1) {
      Atomics.store(control, ARRIVED, 0);
      Atomics.add(control, GENERATION, 1);
      Atomics.notify(control, GENERATION);
      return;
    }
    const deadline = Date.now() + timeoutMs;
    while (Atomics.load(control, GENERATION) === generation) {
      const error = failed();
      if (error !== null) throw error;
      const left = deadline - Date.now();
      if (left <= 0) {
        // the first rank that has not entered this barrier is the one named
        let missing = 0;
        while (missing < worldSize && Atomics.load(control, word(missing, BARRIERS)) >= barriers) missing++;
        markFailed(TIMED_OUT, missing < worldSize ? missing : rank);
        throw failed() ?? new NormkitError('backend', `all-reduce: rank ${rank} waited ${timeoutMs} ms for the other ranks`);
      }
      Atomics.wait(control, GENERATION, generation, left);
    }
  };
  return {
    worldSize,
    rank,
    allReduce(values: Float64Array): Promise<void> {
      try {
        const error = failed();
        if (error !== null) throw error;
        if (values.length > capacity) throw new NormkitError('shape', `all-reduce: ${values.length} values exceed the group's capacity of ${capacity}`);
        calls++;
        slots[rank].set(values);
        Atomics.store(control, word(rank, LENGTH), values.length);
        Atomics.store(control, word(rank, CALL), calls);
        barrier();
        for (let r = 0; r < worldSize; r++) {
          const call = Atomics.load(control, word(r, CALL));
          // a rank on another call number would hand over a slot from another step
          if (call !== calls) throw new NormkitError('backend', `all-reduce: rank ${r} is at call ${call}, rank ${rank} at ${calls}`);
          const length = Atomics.load(control, word(r, LENGTH));
          if (length !== values.length) throw new NormkitError('shape', `all-reduce: rank ${r} passed ${length} values, rank ${rank} ${values.length}`);
        }
        sumInRankOrder(values, slots.map((s) => s.subarray(0, values.length)));
        barrier();
        return Promise.resolve();
      } catch (error) {
        // the others must not wait for this rank at the next barrier
        if (Atomics.load(control, FAILURE) === 0) markFailed(ABORTED, rank);
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    },
    abort(): void {
      markFailed(ABORTED, rank);
    },
  };
}
