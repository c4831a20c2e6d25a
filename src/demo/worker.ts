/** Trains one network of the experiment in a worker thread, so both networks train at once on two cores. */
import { parentPort, workerData } from 'node:worker_threads';
import { loadDigits } from './data.js';
import type { ExperimentOptions, RunResult } from './experiment.js';
import { trainNetwork } from './experiment.js';

export interface WorkerJob {
  readonly network: RunResult['network'];
  readonly trainCount: number;
  readonly options: Omit<ExperimentOptions, 'onStep'>;
}

export type WorkerMessage = { readonly kind: 'step'; readonly step: number; readonly loss: number; readonly accuracy: number } | { readonly kind: 'done'; readonly result: RunResult };

const port = parentPort;
if (port !== null) {
  const job = workerData as WorkerJob;
  const digits = loadDigits(job.trainCount, job.options.seed);
  const result = trainNetwork(job.network, digits, {
    ...job.options,
    onStep: (_network, step, loss, accuracy) => {
      port.postMessage({ kind: 'step', step, loss, accuracy } satisfies WorkerMessage);
    },
  });
  port.postMessage({ kind: 'done', result } satisfies WorkerMessage);
}
