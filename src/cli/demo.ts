/** `normkit demo mnist`: BatchNorm's Fig. 1 on real MNIST digits, with charts, logs and a summary table. */
import { writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { flagLimits, integerFlag, positiveNumberFlag } from './numbers.js';
import { dataParallelDemo } from './demo-parallel.js';
import { ensureOutputDir } from './files.js';
import { accuracyChart, percentileCharts } from '../demo/charts.js';
import { mnistDir } from '../demo/data.js';
import type { RunResult } from '../demo/experiment.js';
import { medianDrift, stepsTo } from '../demo/experiment.js';
import type { WorkerJob, WorkerMessage } from '../demo/worker.js';
import { summaryMarkdown, toCsv } from '../demo/report.js';
import { NormkitError } from '../index.js';
import { toPng, toSvg } from '../io/chart.js';

export const demoUsage = `usage: normkit demo mnist [--steps N] [--lr R] [--seed S] [--every K] [--out DIR] [--workers N [--sync-bn]]
  Trains a 784-100-100-100-10 sigmoid network on 8,000 MNIST digits with and without BatchNorm1d
  (SGD, batch 60, same initialization, data order and learning rate) and tests on 2,000.
  Writes to --out (default demo-out): accuracy.svg/png, percentiles-baseline.svg/png,
  percentiles-batchnorm.svg/png, log.csv, log.json, summary.md. Defaults: 3000 steps, lr 0.5, seed 1, every 100.
  --workers N trains the BatchNorm network data-parallel on N worker threads (N x 60/N samples per step)
  beside the single-process run on the same batches and compares their test curves (sync-bn.md/json with
  --sync-bn: SyncBatchNorm; local-bn.md/json without: each worker's own batch statistics).
  Under normkit run --ranks N, --sync-bn makes each process one rank over WebSocket (--shards a,b,...:
  samples per rank, adding up to 60); rank 0 compares with the single-process run and writes sync-bn.md/json.`;

const NETWORKS: readonly RunResult['network'][] = ['baseline', 'batchnorm'];

/** Progress of both runs: two bars redrawn in place on a terminal, plain lines otherwise. */
function progress(steps: number, tty: boolean): (network: string, step: number, loss: number, accuracy: number) => void {
  const started = performance.now();
  const state = new Map<string, string>(NETWORKS.map((n) => [n, `${n.padEnd(9)} starting`]));
  let drawn = false;
  return (network, step, loss, accuracy) => {
    const rate = step / Math.max((performance.now() - started) / 1000, 1e-9);
    if (tty) {
      if (step % 10 !== 0 && step !== steps) return;
      const width = 30;
      const filled = Math.round((width * step) / steps);
      state.set(network, `${network.padEnd(9)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${step}/${steps} ${rate.toFixed(0)} steps/s loss ${loss.toFixed(3)} test acc ${accuracy.toFixed(3)}`);
      // move up over the two bars and redraw them
      process.stderr.write(`${drawn ? '\x1b[2A' : ''}${[...state.values()].map((line) => `\r\x1b[2K${line}\n`).join('')}`);
      drawn = true;
    } else if (step % Math.max(1, Math.floor(steps / 10)) === 0 || step === steps) {
      process.stderr.write(`${network} step ${step}/${steps} ${rate.toFixed(0)} steps/s loss ${loss.toFixed(4)} test accuracy ${accuracy.toFixed(4)}\n`);
    }
  };
}

/** Trains both networks at once, one worker thread each (same seed, same data order, same initialization). */
function trainBoth(job: Omit<WorkerJob, 'network'>, onStep: (network: string, step: number, loss: number, accuracy: number) => void): Promise<RunResult[]> {
  return Promise.all(
    NETWORKS.map(
      (network) =>
        new Promise<RunResult>((resolve, reject) => {
          const worker = new Worker(new URL('../demo/worker.js', import.meta.url), { workerData: { ...job, network } satisfies WorkerJob });
          worker.on('message', (message: WorkerMessage) => {
            if (message.kind === 'step') onStep(network, message.step, message.loss, message.accuracy);
            else resolve(message.result);
          });
          worker.on('error', reject);
          worker.on('exit', (code) => {
            if (code !== 0) reject(new NormkitError('option', `the ${network} training worker exited with code ${code}`));
          });
        }),
    ),
  );
}

export async function demoCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      steps: { type: 'string', default: '3000' },
      lr: { type: 'string', default: '0.5' },
      seed: { type: 'string', default: '1' },
      every: { type: 'string', default: '100' },
      out: { type: 'string', default: 'demo-out' },
      workers: { type: 'string', default: '1' },
      'sync-bn': { type: 'boolean', default: false },
      shards: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(demoUsage);
    return 0;
  }
  if (positionals[0] !== 'mnist') throw new NormkitError('option', `unknown demo '${positionals[0] ?? ''}': the demo is 'mnist'\n${demoUsage}`);
  const steps = integerFlag('--steps', values.steps, 1, flagLimits.steps);
  const every = integerFlag('--every', values.every, 1, flagLimits.every);
  const seed = integerFlag('--seed', values.seed, -(2 ** 31), 2 ** 31 - 1);
  const lr = positiveNumberFlag('--lr', values.lr, flagLimits.lr);
  mnistDir();
  ensureOutputDir(values.out, '--out');
  const workers = integerFlag('--workers', values.workers, 1, 60);
  // under `normkit run` (WORLD_SIZE set): this process is one rank, joined over WebSocket
  if (values['sync-bn'] && workers === 1 && process.env.WORLD_SIZE !== undefined) {
    // loaded here: the other commands do not pay for ws and the coordinator at startup
    const { rankDemo } = await import('./demo-ranks.js');
    await rankDemo({ options: { steps, lr, seed, every }, shards: values.shards, out: values.out });
    return 0;
  }
  if (values.shards !== undefined) throw new NormkitError('option', '--shards takes effect under `normkit run --ranks N -- normkit demo mnist --sync-bn`');
  if (workers !== 1 || values['sync-bn']) {
    await dataParallelDemo({ options: { steps, lr, seed, every }, workers, syncBn: values['sync-bn'], out: values.out }, progress(steps, false));
    return 0;
  }
  console.log(`MNIST: 8000 training and 2000 test digits; ${steps} steps of SGD (batch 60, lr ${lr}) per network, both networks at once`);
  const runs = await trainBoth({ trainCount: 8000, options: { steps, lr, seed, batch: 60, every } }, progress(steps, process.stderr.isTTY));
  const command = `normkit demo mnist --steps ${steps} --lr ${lr} --seed ${seed} --every ${every}`;
  const charts = [['accuracy', accuracyChart(runs)] as const, ...percentileCharts(runs).map((spec, k) => [`percentiles-${runs[k].network}`, spec] as const)];
  for (const [name, spec] of charts) {
    const svg = await toSvg(spec);
    writeFileSync(join(values.out, `${name}.svg`), svg);
    writeFileSync(join(values.out, `${name}.png`), await toPng(svg));
  }
  writeFileSync(join(values.out, 'log.csv'), toCsv(runs));
  writeFileSync(join(values.out, 'log.json'), `${JSON.stringify({ command, runs }, null, 1)}\n`);
  const summary = summaryMarkdown(runs, command);
  writeFileSync(join(values.out, 'summary.md'), summary);
  console.log(`\n${summary}`);
  const [base, bn] = runs;
  console.log(`wrote ${values.out}/: accuracy and percentile charts (svg, png), log.csv, log.json, summary.md`);
  console.log(`90% test accuracy: without BN at step ${stepsTo(base, 0.9) ?? '-'}, with BN at step ${stepsTo(bn, 0.9) ?? '-'}; median drift ${medianDrift(base).toFixed(3)} vs ${medianDrift(bn).toFixed(3)}`);
  return 0;
}
