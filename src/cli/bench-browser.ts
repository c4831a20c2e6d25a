/** `normkit bench --browser`: the benchmark in headless Chromium over several page loads, with tfjs-wasm's thread check. */
import { writeFileSync } from 'node:fs';
import { acrossLoads, formatSpreadMarkdown } from '../bench/browser/spread.js';
import type { BrowserBenchOptions } from '../bench/browser/run.js';
import { resolves } from '../bench/peers/available.js';
import { benchChart, formatReport } from '../bench/report.js';
import { toSvg } from '../io/chart.js';
import type { ThreadProbe } from '../bench/browser/protocol.js';
import { bytesPerElement } from '../bench/types.js';
import { NormkitError } from '../index.js';

export interface BrowserOutputs {
  readonly json: boolean;
  readonly svg?: string | undefined;
  readonly markdown?: string | undefined;
}

function describeProbe(probe: ThreadProbe, workers: number, base?: ThreadProbe): string {
  const faster = (ms: number, baseMs?: number) => (baseMs === undefined ? '' : ` (${(baseMs / ms).toFixed(2)}x the 1-thread speed)`);
  return (
    `setThreadsCount(${probe.asked})${probe.cores === undefined ? '' : ` with navigator.hardwareConcurrency set to ${probe.cores}`}: getThreadsCount() ${probe.reported}, ${workers} worker(s) on the page, ` +
    `matMul 1024x1024 ${probe.matMulMs.toFixed(1)} ms${faster(probe.matMulMs, base?.matMulMs)}, batchNorm on A ${probe.batchNormMs.toFixed(1)} ms${faster(probe.batchNormMs, base?.batchNormMs)}`
  );
}

export async function benchInBrowser(options: Omit<BrowserBenchOptions, 'log'>, outputs: BrowserOutputs): Promise<number> {
  const missing = ['vite', 'playwright-core', ...(options.peers ? ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'] : [])].filter((name) => !resolves(name));
  if (missing.length > 0) throw new NormkitError('option', `--browser needs ${missing.join(', ')}: npm install ${missing.join(' ')}`);
  const log = (line: string) => {
    (outputs.json ? console.error : console.log)(line);
  };
  const { runBrowserBench } = await import('../bench/browser/run.js');
  const result = await runBrowserBench({ ...options, log });
  const rows = acrossLoads(result.loads);
  const probes = result.tfjsThreads.map((probe, i) => describeProbe(probe, result.tfjsWorkers[i] ?? 0, i > 0 ? result.tfjsThreads[0] : undefined));
  if (outputs.svg !== undefined) writeFileSync(outputs.svg, await toSvg(benchChart(rows)));
  if (outputs.markdown !== undefined) writeFileSync(outputs.markdown, formatSpreadMarkdown(rows));
  if (outputs.json) console.log(JSON.stringify({ browser: result.browser, rows, tfjsWasmThreads: result.tfjsThreads.map((p, i) => ({ ...p, workers: result.tfjsWorkers[i] })) }));
  else {
    console.log(`\nChromium ${result.browser}; medians of ${options.loads} page loads (min ms: over all loads); spread = slowest load / fastest load`);
    console.log(formatReport(rows, bytesPerElement));
    console.log(
      formatSpreadTable(rows),
    );
    for (const line of probes) console.log(`tfjs-wasm ${line}`);
  }
  const failed = result.checks.filter((c) => !c.ok && c.system.startsWith('normkit'));
  return failed.length === 0 ? 0 : 1;
}

function formatSpreadTable(rows: ReturnType<typeof acrossLoads>): string {
  const lines = rows
    .filter((r) => !r.system.endsWith('-bound'))
    .map((r) => `${r.shape} ${r.layout} ${r.op} ${r.system} (${r.threads}t): ${r.loads_ms.map((ms) => ms.toPrecision(3)).join(' / ')} ms, spread ${r.spread.toFixed(2)}`);
  return `per-load medians:\n${lines.join('\n')}\n`;
}
