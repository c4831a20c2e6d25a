/**
 * `normkit demo mnist --workers N [--sync-bn]`: the BatchNorm network trained data-parallel on N worker
 * threads (global batch 60 = N x 60/N) beside the single-process run on the same batches, and their
 * test curves compared checkpoint by checkpoint.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DataParallelResult } from '../demo/data-parallel.js';
import { gradientCount } from '../demo/data-parallel.js';
import type { Checkpoint, ExperimentOptions, RunResult } from '../demo/experiment.js';
import type { RankJob, RankMessage } from '../demo/sync-worker.js';
import type { WorkerJob, WorkerMessage } from '../demo/worker.js';
import { createSharedGroup, NormkitError } from '../index.js';

/** A demo worker: the compiled file beside this one, or (run from source) its TypeScript through tsx's loader. */
function startWorker(name: string, workerData: unknown): Worker {
  const compiled = new URL(`../demo/${name}.js`, import.meta.url);
  if (existsSync(fileURLToPath(compiled))) return new Worker(compiled, { workerData });
  const source = JSON.stringify(new URL(`../demo/${name}.ts`, import.meta.url).href);
  return new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${source}); })`, { eval: true, workerData });
}

/** Rejects when the worker fails or exits early. */
function watch(worker: Worker, what: string, reject: (error: Error) => void): void {
  worker.on('error', reject);
  worker.on('exit', (code) => {
    if (code !== 0) reject(new NormkitError('option', `the ${what} worker exited with code ${code}`));
  });
}

export interface ParallelDemoOptions {
  readonly options: Omit<ExperimentOptions, 'onStep' | 'batch'>;
  readonly workers: number;
  readonly syncBn: boolean;
  readonly out: string;
}

export interface Comparison {
  readonly single: readonly Checkpoint[];
  readonly parallel: readonly Checkpoint[];
  readonly maxAccuracyDifference: number;
  readonly maxLossDifference: number;
}

export function compareRuns(single: readonly Checkpoint[], parallel: readonly Checkpoint[]): Comparison {
  const diff = (key: 'accuracy' | 'loss') => Math.max(...single.map((c, k) => Math.abs(c[key] - (parallel[k]?.[key] ?? Number.NaN))));
  return { single, parallel, maxAccuracyDifference: diff('accuracy'), maxLossDifference: diff('loss') };
}

export function comparisonMarkdown(c: Comparison, command: string, label: string, seconds: readonly [number, number]): string {
  return [
    `# Data-parallel BatchNorm on MNIST: ${label}`,
    '',
    `Made by \`${command}\`: the same network, initialization and batches of 60 as the single-process BatchNorm run; each worker takes its slice of every batch and the gradients are averaged over the workers before each SGD step (as DDP does).`,
    '',
    '| step | test accuracy, one process | test accuracy, data-parallel | test loss, one process | test loss, data-parallel |',
    '|---:|---:|---:|---:|---:|',
    ...c.single.map((s, k) => `| ${s.step} | ${s.accuracy.toFixed(4)} | ${(c.parallel[k]?.accuracy ?? Number.NaN).toFixed(4)} | ${s.loss.toFixed(6)} | ${(c.parallel[k]?.loss ?? Number.NaN).toFixed(6)} |`),
    '',
    `- largest difference over the checkpoints: test accuracy ${c.maxAccuracyDifference.toFixed(4)}, test loss ${c.maxLossDifference.toExponential(2)}`,
    `- training time: one process ${seconds[0].toFixed(1)} s, data-parallel ${seconds[1].toFixed(1)} s`,
    '',
  ].join('\n');
}

export async function dataParallelDemo(demo: ParallelDemoOptions, progress: (network: string, step: number, loss: number, accuracy: number) => void): Promise<Comparison> {
  const { workers, syncBn, out } = demo;
  const batch = 60;
  if (!Number.isInteger(workers) || workers < 2 || batch % workers !== 0) throw new NormkitError('option', `--workers must divide the global batch of ${batch} (2, 3, 4, 5, 6, ...), got ${workers}`);
  const options = { ...demo.options, batch };
  const label = `${workers} workers x ${batch / workers} samples, ${syncBn ? 'SyncBatchNorm' : 'local BatchNorm per worker'}`;
  console.log(`MNIST: the BatchNorm network in one process and data-parallel (${label}), ${options.steps} steps of SGD (global batch ${batch}, lr ${options.lr})`);
  const started = performance.now();
  const singleRun = new Promise<RunResult>((resolve, reject) => {
    const worker = startWorker('worker', { network: 'batchnorm', trainCount: 8000, options } satisfies WorkerJob);
    watch(worker, 'single-process', reject);
    worker.on('message', (m: WorkerMessage) => {
      if (m.kind === 'step') progress('batchnorm', m.step, m.loss, m.accuracy);
      else resolve(m.result);
    });
  });
  const group = createSharedGroup(workers, gradientCount(options.seed));
  const parallelName = syncBn ? 'sync-bn' : 'local-bn';
  const ranks = Array.from(
    { length: workers },
    (_, rank) =>
      new Promise<DataParallelResult | null>((resolve, reject) => {
        const worker = startWorker('sync-worker', { group, rank, trainCount: 8000, options: { ...options, syncBn } } satisfies RankJob);
        watch(worker, `rank ${rank}`, reject);
        worker.on('message', (m: RankMessage) => {
          if (m.kind === 'step') progress(parallelName, m.step, m.loss, m.accuracy);
          else if (m.kind === 'done') resolve(m.result);
          else reject(new NormkitError('option', `rank ${rank}: ${m.message}`));
        });
      }),
  );
  const [bn, ...rankResults] = await Promise.all([singleRun, ...ranks]);
  const parallel = rankResults[0];
  if (parallel === null) throw new NormkitError('option', 'rank 0 returned no checkpoints');
  const comparison = compareRuns(bn.checkpoints, parallel.checkpoints);
  const command = `normkit demo mnist --workers ${workers}${syncBn ? ' --sync-bn' : ''} --steps ${options.steps} --lr ${options.lr} --seed ${options.seed} --every ${options.every}`;
  const summary = comparisonMarkdown(comparison, command, label, [bn.seconds, parallel.seconds]);
  writeFileSync(join(out, `${parallelName}.md`), summary);
  writeFileSync(join(out, `${parallelName}.json`), `${JSON.stringify({ command, workers, syncBn, ...comparison, seconds: { single: bn.seconds, parallel: parallel.seconds }, elapsed: (performance.now() - started) / 1000 }, null, 1)}\n`);
  console.log(`\n${summary}`);
  console.log(`wrote ${out}/${parallelName}.md and ${parallelName}.json`);
  return comparison;
}
