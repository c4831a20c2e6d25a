/** The demo's logs: CSV and JSON of every checkpoint, and a Markdown summary table. */
import type { RunResult } from './experiment.js';
import { medianDrift, stepsTo } from './experiment.js';

export function toCsv(runs: readonly RunResult[]): string {
  const lines = ['network,step,test_accuracy,test_loss,p15,p50,p85'];
  for (const r of runs) for (const c of r.checkpoints) lines.push([r.network, c.step, c.accuracy, c.loss, ...c.percentiles].join(','));
  return `${lines.join('\n')}\n`;
}

export function summaryMarkdown(runs: readonly RunResult[], command: string): string {
  const [base, bn] = runs;
  const rows = bn.checkpoints.map((c, k) => `| ${c.step} | ${(base.checkpoints[k]?.accuracy ?? Number.NaN).toFixed(4)} | ${c.accuracy.toFixed(4)} |`);
  const reach = (r: RunResult) => stepsTo(r, 0.9)?.toString() ?? 'not reached';
  return [
    `# BatchNorm on MNIST (Ioffe & Szegedy 2015, Fig. 1)`,
    '',
    `Made by \`${command}\`: 784-100-100-100-10 sigmoid network, SGD, same initialization, data order and learning rate; the BN network adds BatchNorm1d before each hidden sigmoid and is evaluated in eval mode (running statistics).`,
    '',
    '| step | test accuracy without BN | test accuracy with BN |',
    '|---:|---:|---:|',
    ...rows,
    '',
    `- steps to 90% test accuracy: without BN ${reach(base)}, with BN ${reach(bn)}`,
    `- drift of the median sigmoid input (max - min over checkpoints): without BN ${medianDrift(base).toFixed(3)}, with BN ${medianDrift(bn).toFixed(3)}`,
    `- training time: without BN ${base.seconds.toFixed(1)} s, with BN ${bn.seconds.toFixed(1)} s`,
    '',
  ].join('\n');
}
