// One rank of the worker_threads SyncBatchNorm test: runs the steps of its shard and posts every tensor back.
import { parentPort, workerData } from 'node:worker_threads';
import type { SharedGroup } from '../src/nn/sync/shared-memory.ts';
import { sharedMemoryCommunicator } from '../src/nn/sync/shared-memory.ts';
import { SyncBatchNorm } from '../src/nn/sync/sync-batchnorm.ts';
import type { Layout } from '../src/core/layout.ts';
import type { ModuleState } from '../src/nn/module.ts';

export interface RankJob {
  readonly group: SharedGroup;
  readonly rank: number;
  readonly channels: number;
  readonly layout: Layout;
  readonly state: Record<string, number[] | number>;
  /** per step: mode, this rank's x and dy */
  readonly steps: { train: boolean; x: Float64Array; dy: Float64Array; shape: number[] }[];
}

export interface RankResult {
  readonly steps: { y: Float64Array; dx: Float64Array; dweight: Float64Array; dbias: Float64Array; state: ModuleState }[];
}

async function run(job: RankJob): Promise<RankResult> {
  const bn = new SyncBatchNorm(job.channels, sharedMemoryCommunicator(job.group, job.rank, 20_000), { dtype: 'float64', layout: job.layout });
  bn.loadStateDict(job.state);
  const steps: RankResult['steps'] = [];
  for (const step of job.steps) {
    bn.train(step.train);
    bn.zeroGrad();
    const y = await bn.forward({ data: step.x, shape: step.shape });
    const dx = await bn.backward({ data: step.dy, shape: step.shape });
    const state = bn.stateDict();
    steps.push({ y: Float64Array.from(y.data), dx: Float64Array.from(dx.data), dweight: Float64Array.from(bn.weight!.grad), dbias: Float64Array.from(bn.bias!.grad), state });
  }
  return { steps };
}

const port = parentPort;
if (port !== null) {
  run(workerData as RankJob).then(
    (result) => {
      port.postMessage({ ok: true, result });
    },
    (error: unknown) => {
      port.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error) });
    },
  );
}
