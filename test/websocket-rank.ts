// One rank process of the WebSocket tests: joins the group from RANK/WORLD_SIZE/MASTER_PORT/NORMKIT_TOKEN,
// runs the cases of the job file (JOB) on its shard, and prints one JSON line: every tensor, or the error.
import { readFileSync } from 'node:fs';
import type { Layout } from '../src/core/layout.ts';
import { SyncBatchNorm } from '../src/nn/sync/sync-batchnorm.ts';
import { joinWebSocketGroup } from '../src/node/websocket-group.ts';
import type { DType } from '../src/tensor.ts';

export interface RankCase {
  readonly dtype: DType;
  readonly layout: Layout;
  readonly channels: number;
  readonly state: Record<string, number[] | number>;
  /** per step: train or eval, this rank's x and dy and their shape */
  readonly steps: { train: boolean; x: number[]; dy: number[]; shape: number[] }[];
}

export interface RankJob {
  readonly cases: RankCase[];
  /** 'hang-after-forward': print "forward done" after the first forward, then wait (to be killed) */
  readonly behaviour?: 'hang-after-forward';
  readonly timeoutMs: number;
}

export interface RankOutput {
  readonly rank: number;
  readonly cases?: { y: number[]; dx: number[]; dweight: number[]; dbias: number[]; state: Record<string, number[] | number> }[][];
  readonly error?: string;
  readonly numBatchesTracked?: number | undefined;
}

const job = JSON.parse(readFileSync(process.env.JOB ?? '', 'utf8')) as RankJob;
const rank = Number(process.env.RANK);
const group = await joinWebSocketGroup({ timeoutMs: job.timeoutMs, heartbeatMs: 200 });
const output: RankOutput['cases'] = [];
let layer: SyncBatchNorm | null = null;
try {
  for (const c of job.cases) {
    const bn = new SyncBatchNorm(c.channels, group.communicator, { dtype: c.dtype, layout: c.layout });
    layer = bn;
    bn.loadStateDict(c.state);
    const steps: NonNullable<RankOutput['cases']>[number] = [];
    for (const step of c.steps) {
      const array = c.dtype === 'float32' ? Float32Array : Float64Array;
      bn.train(step.train);
      bn.zeroGrad();
      const y = await bn.forward({ data: array.from(step.x), shape: step.shape });
      if (job.behaviour === 'hang-after-forward') {
        console.log('forward done');
        await new Promise(() => undefined);
      }
      const dx = await bn.backward({ data: array.from(step.dy), shape: step.shape });
      const state = bn.stateDict();
      const plain = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, typeof v === 'number' ? v : Array.from(v)]));
      steps.push({ y: Array.from(y.data), dx: Array.from(dx.data), dweight: Array.from(bn.weight?.grad ?? []), dbias: Array.from(bn.bias?.grad ?? []), state: plain });
    }
    output.push(steps);
  }
  console.log(JSON.stringify({ rank, cases: output } satisfies RankOutput));
  await group.close();
} catch (error) {
  console.log(JSON.stringify({ rank, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error), numBatchesTracked: layer?.numBatchesTracked } satisfies RankOutput));
  await group.close();
  process.exitCode = 1;
}
