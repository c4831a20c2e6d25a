/**
 * Communicators for ranks on different threads (Node worker_threads, Web Workers) over one
 * SharedArrayBuffer: each rank writes its values into its own slot, waits at a barrier
 * (Atomics.wait: a worker thread, never a browser's main thread), sums every slot in rank order,
 * and waits again so no slot is overwritten while another rank still reads it.
 */
import { NormkitError } from '../../errors.js';
import type { Communicator } from './communicator.js';
import { sumInRankOrder } from './communicator.js';

/** What every rank's thread receives (structured-clonable: post it in workerData). */
export interface SharedGroup {
  readonly worldSize: number;
  /** Most values one all-reduce may carry. */
  readonly capacity: number;
  /** [arrived, generation, length of each rank's values...] as Int32, then worldSize slots of `capacity` float64. */
  readonly buffer: SharedArrayBuffer;
}

const ARRIVED = 0;
const GENERATION = 1;
const LENGTHS = 2;

function slotsOffset(worldSize: number): number {
  // the float64 slots start 8-byte aligned after the Int32 control words
  return Math.ceil(((LENGTHS + worldSize) * 4) / 8) * 8;
}

export function createSharedGroup(worldSize: number, capacity: number): SharedGroup {
  if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(capacity) || capacity < 1) {
    throw new NormkitError('option', `createSharedGroup: worldSize and capacity must be positive integers, got ${worldSize} and ${capacity}`);
  }
  return { worldSize, capacity, buffer: new SharedArrayBuffer(slotsOffset(worldSize) + worldSize * capacity * 8) };
}

/** The communicator of `rank` in `group`; `timeoutMs` bounds each wait for the other ranks. */
export function sharedMemoryCommunicator(group: SharedGroup, rank: number, timeoutMs = 60_000): Communicator {
  const { worldSize, capacity, buffer } = group;
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new NormkitError('option', `sharedMemoryCommunicator: rank must be in [0, ${worldSize}), got ${rank}`);
  const control = new Int32Array(buffer, 0, LENGTHS + worldSize);
  const slots = Array.from({ length: worldSize }, (_, r) => new Float64Array(buffer, slotsOffset(worldSize) + r * capacity * 8, capacity));
  // a generation-counting barrier: the last rank to arrive starts the next generation and wakes the rest
  const barrier = (): void => {
    const generation = Atomics.load(control, GENERATION);
    if (Atomics.add(control, ARRIVED, 1) === worldSize - 1) {
      Atomics.store(control, ARRIVED, 0);
      Atomics.add(control, GENERATION, 1);
      Atomics.notify(control, GENERATION);
      return;
    }
    while (Atomics.load(control, GENERATION) === generation) {
      if (Atomics.wait(control, GENERATION, generation, timeoutMs) === 'timed-out') {
        throw new NormkitError('backend', `all-reduce: rank ${rank} waited ${timeoutMs} ms for the other ranks`);
      }
    }
  };
  return {
    worldSize,
    rank,
    allReduce(values: Float64Array): Promise<void> {
      try {
        if (values.length > capacity) throw new NormkitError('shape', `all-reduce: ${values.length} values exceed the group's capacity of ${capacity}`);
        slots[rank].set(values);
        Atomics.store(control, LENGTHS + rank, values.length);
        barrier();
        for (let r = 0; r < worldSize; r++) {
          const length = Atomics.load(control, LENGTHS + r);
          if (length !== values.length) throw new NormkitError('shape', `all-reduce: rank ${r} passed ${length} values, rank ${rank} ${values.length}`);
        }
        sumInRankOrder(values, slots.map((s) => s.subarray(0, values.length)));
        barrier();
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    },
  };
}
