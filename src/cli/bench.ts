/** `normkit bench`: normkit's backends and the installed peers side by side, against this machine's memory bandwidth. */
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { MAX_WASM_THREADS } from '../core/limits.js';
import { flagLimits, integerFlag } from './numbers.js';
import type { CheckResult } from '../bench/harness.js';
import { benchShape } from '../bench/harness.js';
import { layerSystems } from '../bench/layer.js';
import { normkitSystems } from '../bench/normkit.js';
import { probeGpuBandwidth, webgpuResidentSystems } from '../bench/webgpu.js';
import { peerStatus } from '../bench/peers/available.js';
import { benchInBrowser } from './bench-browser.js';
import { probeBandwidth } from '../bench/probe.js';
import { benchChart, formatMarkdown, formatReport } from '../bench/report.js';
import type { Row, System } from '../bench/types.js';
import { bytesPerElement, shapeSpecs } from '../bench/types.js';
import { NormkitError } from '../index.js';
import { toSvg } from '../io/chart.js';
import { wasmPool } from '../kernels/wasm/backend.js';
import type { WebGpuNorm } from '../index.js';
import { createNodeWebGpu, startWasmThreads, startWebGpu, stopWasmThreads, stopWebGpu } from '../node/index.js';
import { ensureOutputFile } from './files.js';

export const benchUsage = `usage: normkit bench [--shape A|B|C|LN|GN] [--reps N] [--threads N] [--no-peers] [--no-webgpu] [--systems PREFIX]... [--json] [--svg FILE] [--markdown FILE] [--browser [--loads N]]
  Times forward (train), backward, forward+backward and inference, interleaved in one process, for normkit's
  backends (js, wasm on 1 thread, wasm threaded, wasm with data resident in wasm memory, webgpu with copies
  and GPU-resident where an adapter exists) and the peers that are installed (tfjs cpu and wasm,
  the same with normkit installed in them, onnxruntime-node), after checking each against the float64 result; and a DRAM bound from a
  copy-bandwidth probe of the same run.
  --systems  time only the systems whose names start so (e.g. normkit-webgpu); repeatable
  webgpu rows are measured against the GPU's copy bandwidth (gpu-bound); GPU-resident steps are queued
  as a training loop queues them, with one wait per batch of about 200 ms; normkit-webgpu-kernels is
  their GPU time alone (timestamp queries), where the adapter has them
  peers: tfjs cpu and wasm, onnxruntime-node, and PyTorch (a Python with torch: NORMKIT_TORCH_PYTHON,
  else python3, else /usr/bin/python3; at 1 thread and at --threads, both layouts); a missing one is
  named with the command that installs it
  --json   one JSON array of rows {system, threads, shape, layout, op, median_ms, min_ms}
  --svg    write a chart of the ratios to the DRAM bound
  --markdown  write one Markdown table of the medians (the README's)
  --browser  the same systems in headless Chromium (/usr/bin/chromium or CHROMIUM_PATH; needs vite and
           playwright-core), cross-origin isolated, normkit on 1 thread and on Web Workers, tfjs cpu and
           wasm (first checked: does setThreadsCount give more than one thread?), normkit's webgpu rows
           where the browser has an adapter; --loads page loads (3), their medians and spread`;

export async function benchCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      shape: { type: 'string', multiple: true },
      reps: { type: 'string', default: '9' },
      threads: { type: 'string', default: String(Math.min(availableParallelism(), MAX_WASM_THREADS)) },
      'no-peers': { type: 'boolean', default: false },
      'no-webgpu': { type: 'boolean', default: false },
      systems: { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
      svg: { type: 'string' },
      markdown: { type: 'string' },
      browser: { type: 'boolean', default: false },
      loads: { type: 'string', default: '3' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(benchUsage);
    return 0;
  }
  const reps = integerFlag('--reps', values.reps, 1, flagLimits.reps);
  const threads = integerFlag('--threads', values.threads, 1, MAX_WASM_THREADS);
  const wanted = values.shape ?? ['A', 'B', 'C', 'LN', 'GN'];
  const specs = shapeSpecs.filter((s) => wanted.includes(s.name));
  if (specs.length === 0) throw new NormkitError('option', `unknown --shape ${wanted.join(', ')}: expected A, B, C, LN or GN`);
  const log = (line: string) => {
    if (!values.json) console.log(line);
  };
  if (values.svg !== undefined) ensureOutputFile(values.svg, '--svg');
  if (values.markdown !== undefined) ensureOutputFile(values.markdown, '--markdown');
  if (values.browser) {
    const page = { shapes: specs.map((s) => s.name), reps, budgetMs: 4000, threads, peers: !values['no-peers'], webgpu: !values['no-webgpu'], systems: values.systems ?? [] };
    return benchInBrowser({ ...page, loads: integerFlag('--loads', values.loads, 1, flagLimits.loads) }, values);
  }
  const peers = values['no-peers'] ? [] : await peerStatus(threads);
  const missing = peers.filter((p) => p.missing !== undefined).map((p) => `${p.name}: not run (${p.missing ?? ''})`);
  // with --json the rows alone go to stdout
  for (const line of missing) (values.json ? console.error : console.log)(line);
  await startWasmThreads(threads);
  const gpu = values['no-webgpu'] ? null : await startGpu(log);
  try {
    const pool = wasmPool();
    const systems: System[] = [
      ...normkitSystems(pool, gpu !== null),
      ...layerSystems(pool),
      ...(gpu === null ? [] : webgpuResidentSystems(gpu)),
      ...peers.flatMap((p) => p.systems),
    ].filter((system) => values.systems === undefined || values.systems.some((prefix) => system.name.startsWith(prefix)));
    const bandwidth = { ...probeBandwidth(), ...(gpu === null ? {} : { gpu: await probeGpuBandwidth(gpu) }) };
    log(`memory bandwidth probe: typed-array copy ${bandwidth.typedCopy.toFixed(1)} GB/s, wasm copy on ${pool?.threads ?? 1} threads ${bandwidth.wasmCopy.toFixed(1)} GB/s (read + write)`);
    if (bandwidth.gpu !== undefined) log(`GPU bandwidth probe: compute copy (vec4, WebGPU) ${bandwidth.gpu.toFixed(1)} GB/s (read + write)`);
    const rows: Row[] = [];
    const checks: CheckResult[] = [];
    for (const spec of specs) {
      log(`shape ${spec.name} [${spec.shape.join('x')}] ${spec.layout} ...`);
      const result = await benchShape(spec, systems, bandwidth, { reps, budgetMs: 4000, tolerance: 1e-3, log, probe: () => probeBandwidth(3) });
      rows.push(...result.rows);
      checks.push(...result.checks);
    }
    if (values.svg !== undefined) writeFileSync(values.svg, await toSvg(benchChart(rows)));
    if (values.markdown !== undefined) writeFileSync(values.markdown, formatMarkdown(rows));
    if (values.json) console.log(JSON.stringify(rows));
    else console.log(`\n${formatReport(rows, bytesPerElement)}${missing.map((line) => `${line}\n`).join('')}`);
    const failed = checks.filter((c) => !c.ok && c.system.startsWith('normkit'));
    return failed.length === 0 ? 0 : 1;
  } finally {
    gpu?.destroy();
    await stopWebGpu();
    await stopWasmThreads();
  }
}

/** The webgpu backend (synchronous, on its worker) and a GPU-resident engine here; null with the reason logged where there is no adapter. */
async function startGpu(log: (line: string) => void): Promise<WebGpuNorm | null> {
  try {
    log(`webgpu adapter: ${await startWebGpu()}`);
    return await createNodeWebGpu({ timestamps: true });
  } catch (error) {
    log(`webgpu: not run (${error instanceof Error ? error.message : String(error)})`);
    await stopWebGpu();
    return null;
  }
}
