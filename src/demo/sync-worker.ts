/** One rank of the data-parallel MNIST run (data-parallel.ts) on a worker thread, joined to the others by shared memory. */
import { parentPort, workerData } from 'node:worker_threads';
import type { SharedGroup } from '../nn/sync/shared-memory.js';
import { sharedMemoryCommunicator } from '../nn/sync/shared-memory.js';
import { loadDigits } from './data.js';
import type { DataParallelOptions, DataParallelResult } from './data-parallel.js';
import { trainDataParallel } from './data-parallel.js';

export interface RankJob {
  readonly group: SharedGroup;
  readonly rank: number;
  readonly trainCount: number;
  readonly options: DataParallelOptions;
}

export type RankMessage =
  | { readonly kind: 'step'; readonly step: number; readonly loss: number; readonly accuracy: number }
  | { readonly kind: 'done'; readonly result: DataParallelResult | null }
  | { readonly kind: 'failed'; readonly message: string };

const port = parentPort;
if (port !== null) {
  const job = workerData as RankJob;
  const digits = loadDigits(job.trainCount, job.options.seed);
  // a rank waits at most 2 minutes for the others (rank 0 evaluates the test set at checkpoints)
  const comm = sharedMemoryCommunicator(job.group, job.rank, 120_000);
  trainDataParallel(comm, digits, job.options, (step, loss, accuracy) => {
    port.postMessage({ kind: 'step', step, loss, accuracy } satisfies RankMessage);
  }).then(
    (result) => {
      port.postMessage({ kind: 'done', result } satisfies RankMessage);
    },
    (error: unknown) => {
      port.postMessage({ kind: 'failed', message: error instanceof Error ? error.message : String(error) } satisfies RankMessage);
    },
  );
}
