/**
 * `normkit run --ranks N -- normkit demo mnist --sync-bn [--shards a,b,...]`: this process is one rank of
 * the data-parallel MNIST run, joined to the others over WebSocket (the environment `normkit run` sets).
 * Rank 0 also trains the single-process network on the same batches (a worker thread), compares the
 * test curves checkpoint by checkpoint and writes sync-bn.md and sync-bn.json once; the other ranks write nothing.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataParallelResult } from '../demo/data-parallel.js';
import { trainDataParallel } from '../demo/data-parallel.js';
import { loadDigits } from '../demo/data.js';
import type { ExperimentOptions, RunResult } from '../demo/experiment.js';
import type { WorkerJob, WorkerMessage } from '../demo/worker.js';
import { NormkitError } from '../errors.js';
import { joinWebSocketGroup } from '../node/websocket-group.js';
import type { Comparison } from './demo-parallel.js';
import { compareRuns, comparisonMarkdown, startWorker, watch } from './demo-parallel.js';

export interface RankDemoOptions {
  readonly options: Omit<ExperimentOptions, 'onStep' | 'batch'>;
  /** Samples per rank of each global batch of 60 (text as given: "15,20,25"); undefined: equal shards. */
  readonly shards: string | undefined;
  readonly out: string;
}

const BATCH = 60;

function readShards(text: string | undefined, worldSize: number): number[] | undefined {
  if (text === undefined) {
    if (BATCH % worldSize !== 0) throw new NormkitError('option', `${worldSize} ranks do not split the global batch of ${BATCH} evenly: pass --shards (e.g. --shards ${Array.from({ length: worldSize }, (_, r) => (r < BATCH % worldSize ? 1 : 0) + Math.floor(BATCH / worldSize)).join(',')})`);
    return undefined;
  }
  const shards = text.split(',').map(Number);
  if (shards.length !== worldSize || shards.some((n) => !Number.isInteger(n) || n < 1) || shards.reduce((a, n) => a + n, 0) !== BATCH) {
    throw new NormkitError('option', `--shards must be ${worldSize} positive integers adding up to ${BATCH}, got '${text}'`);
  }
  return shards;
}

/** One rank's part; rank 0 returns the comparison with the single-process run, the others null. */
export async function rankDemo(demo: RankDemoOptions): Promise<Comparison | null> {
  // rank 0 evaluates 2,000 test digits at every checkpoint while the others wait: a generous timeout
  const group = await joinWebSocketGroup({ timeoutMs: 300_000 });
  const { rank, worldSize } = group.communicator;
  try {
    const options = { ...demo.options, batch: BATCH };
    const shards = readShards(demo.shards, worldSize);
    const label = `${worldSize} processes x ${shards === undefined ? `${BATCH / worldSize}` : shards.join('/')} samples over WebSocket, SyncBatchNorm`;
    const single =
      rank !== 0
        ? null
        : new Promise<RunResult>((resolve, reject) => {
            const worker = startWorker('worker', { network: 'batchnorm', trainCount: 8000, options } satisfies WorkerJob);
            watch(worker, 'single-process', reject);
            worker.on('message', (m: WorkerMessage) => {
              if (m.kind !== 'step') resolve(m.result);
            });
          });
    if (rank === 0) console.log(`MNIST: the BatchNorm network in one process and data-parallel (${label}), ${options.steps} steps of SGD (global batch ${BATCH}, lr ${options.lr})`);
    const parallel: DataParallelResult | null = await trainDataParallel(group.communicator, loadDigits(8000, options.seed), { ...options, syncBn: true, shards }, (step, loss, accuracy) => {
      if (step % options.every === 0) console.log(`step ${step}: loss ${loss.toFixed(4)}, test accuracy ${accuracy.toFixed(4)}`);
    });
    if (single === null || parallel === null) return null;
    const bn = await single;
    const comparison = compareRuns(bn.checkpoints, parallel.checkpoints);
    const command = `normkit run --ranks ${worldSize} -- normkit demo mnist --sync-bn${shards === undefined ? '' : ` --shards ${shards.join(',')}`} --steps ${options.steps} --lr ${options.lr} --seed ${options.seed} --every ${options.every}`;
    const summary = comparisonMarkdown(comparison, command, label, [bn.seconds, parallel.seconds]);
    writeFileSync(join(demo.out, 'sync-bn.md'), summary);
    writeFileSync(join(demo.out, 'sync-bn.json'), `${JSON.stringify({ command, worldSize, shards: shards ?? null, transport: 'websocket', ...comparison, seconds: { single: bn.seconds, parallel: parallel.seconds } }, null, 1)}\n`);
    console.log(`\n${summary}`);
    console.log(`wrote ${demo.out}/sync-bn.md and sync-bn.json`);
    return comparison;
  } finally {
    await group.close();
  }
}
