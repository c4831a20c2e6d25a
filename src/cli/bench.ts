/** `normkit bench`: normkit's backends and the installed peers side by side, against this machine's memory bandwidth. */
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { MAX_WASM_THREADS } from '../core/limits.js';
import { flagLimits, integerFlag } from './numbers.js';
import type { Bound, CheckResult } from '../bench/harness.js';
import { benchShape } from '../bench/harness.js';
import { layerSystems } from '../bench/layer.js';
import { normkitSystems } from '../bench/normkit.js';
import { probeGpuBandwidth, webgpuResidentSystems } from '../bench/webgpu.js';
import { peerStatus } from '../bench/peers/available.js';
import { findTorchPython } from '../bench/peers/pytorch.js';
import type { StandaloneResult } from '../bench/peers/pytorch-standalone.js';
import { runPytorchStandalone, standaloneName } from '../bench/peers/pytorch-standalone.js';
import { probeNative } from '../bench/native-probe.js';
import { boundKey, formatScoreboard, formatScoreboardMarkdown } from '../bench/scoreboard.js';
import { benchInBrowser } from './bench-browser.js';
import type { Bandwidth } from '../bench/probe.js';
import { describeKernel, probeBandwidth, strongest } from '../bench/probe.js';
import { benchChart, formatMarkdown, formatReport } from '../bench/report.js';
import type { Row, ShapeSpec, System } from '../bench/types.js';
import { bytesPerElement, shapeSpecs } from '../bench/types.js';
import { NormkitError } from '../index.js';
import { toSvg } from '../io/chart.js';
import { wasmPool } from '../kernels/wasm/backend.js';
import type { WebGpuNorm } from '../index.js';
import { createNodeWebGpu, startWasmThreads, startWebGpu, stopWasmThreads, stopWebGpu } from '../node/index.js';
import { ensureOutputFile } from './files.js';

export const benchUsage = `usage: normkit bench [--shape A|B|C|LN|GN] [--reps N] [--threads N] [--no-peers] [--no-webgpu] [--no-native-probe] [--pytorch-interleaved] [--systems PREFIX]... [--json] [--svg FILE] [--markdown FILE] [--scoreboard FILE] [--browser [--loads N]]
  In turn, each alone: PyTorch timed as PyTorch times itself (torch.utils.benchmark.Timer, its own process, at 1 thread
  and at --threads, both layouts; rows pytorch-<version>); a native memory-bandwidth probe (scripts/native-probe.sh,
  where a C compiler exists); then normkit's backends (js, wasm on 1 thread, wasm threaded, wasm with data resident
  in wasm memory, the default layer path normkit-layer, webgpu with copies and GPU-resident where an adapter exists)
  and the npm peers that are installed (tfjs cpu and wasm, the same with normkit installed in them,
  onnxruntime-node), timed forward (train), backward, forward+backward and inference, interleaved in one process,
  after checking each against the float64 result. The DRAM bound (dram-bound) is minimal bytes at the strongest
  bandwidth probed: in-process copy, read and fill kernels on 1 and all threads, and the native probe.
  --systems  time only the systems whose names start so (e.g. normkit-webgpu, pytorch); repeatable
  --pytorch-interleaved  PyTorch also as an interleaved peer (pytorch-<version>-interleaved; slower than PyTorch alone:
           docs/bench-method.md)
  --scoreboard  write the scoreboard (Markdown): normkit-layer and PyTorch standalone at 1 thread and --threads, the
           DRAM bound and the ratios; without --systems, times normkit-layer and PyTorch alone
  webgpu rows are measured against the GPU's copy bandwidth (gpu-bound); GPU-resident steps are queued
  as a training loop queues them, with one wait per batch of about 200 ms; normkit-webgpu-kernels is
  their GPU time alone (timestamp queries), where the adapter has them
  PyTorch: a Python with torch (NORMKIT_TORCH_PYTHON, else python3, else /usr/bin/python3); a missing peer is
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
      'no-native-probe': { type: 'boolean', default: false },
      'pytorch-interleaved': { type: 'boolean', default: false },
      systems: { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
      svg: { type: 'string' },
      markdown: { type: 'string' },
      scoreboard: { type: 'string' },
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
  // with --json the rows alone go to stdout
  const note = (line: string) => {
    (values.json ? console.error : console.log)(line);
  };
  if (values.svg !== undefined) ensureOutputFile(values.svg, '--svg');
  if (values.markdown !== undefined) ensureOutputFile(values.markdown, '--markdown');
  if (values.scoreboard !== undefined) ensureOutputFile(values.scoreboard, '--scoreboard');
  if (values.browser) {
    const page = { shapes: specs.map((s) => s.name), reps, budgetMs: 4000, threads, peers: !values['no-peers'], webgpu: !values['no-webgpu'], systems: values.systems ?? [] };
    return benchInBrowser({ ...page, loads: integerFlag('--loads', values.loads, 1, flagLimits.loads) }, values);
  }
  const prefixes = values.systems ?? (values.scoreboard === undefined ? undefined : ['normkit-layer', 'pytorch']);
  const chosen = (name: string) => prefixes === undefined || prefixes.some((prefix) => name.startsWith(prefix));
  const torch = values['no-peers'] ? null : await findTorchPython();
  const peers = torch === null ? [] : peerStatus(threads, torch, values['pytorch-interleaved']);
  const missing = peers.filter((p) => p.missing !== undefined).map((p) => `${p.name}: not run (${p.missing ?? ''})`);
  for (const line of missing) note(line);
  // phases that run alone, before any worker of normkit exists: PyTorch standalone, then the native probe
  const standalone = torch === null || 'reason' in torch || !chosen(standaloneName(torch.version)) ? null : await pytorchStandalone(torch, threads, specs, note);
  const native = values['no-native-probe'] ? undefined : await nativeBandwidth(note);
  await startWasmThreads(threads);
  const gpu = values['no-webgpu'] ? null : await startGpu(log);
  try {
    const pool = wasmPool();
    const systems: System[] = [
      ...normkitSystems(pool, gpu !== null),
      ...layerSystems(pool),
      ...(gpu === null ? [] : webgpuResidentSystems(gpu)),
      ...peers.flatMap((p) => p.systems),
    ].filter((system) => chosen(system.name));
    const bandwidth = { ...probeBandwidth(), ...(gpu === null ? {} : { gpu: await probeGpuBandwidth(gpu) }) };
    log(`memory bandwidth probe in this process (best samples, GB/s of the bytes each kernel must move): ${bandwidth.kernels.map((k) => `${describeKernel(k)} ${k.gbps.toFixed(1)}`).join('; ')}`);
    if (bandwidth.gpu !== undefined) log(`GPU bandwidth probe: compute copy (vec4, WebGPU) ${bandwidth.gpu.toFixed(1)} GB/s (read + write)`);
    const rows: Row[] = [];
    const checks: CheckResult[] = [];
    const bounds = new Map<string, Bound>();
    for (const spec of specs) {
      log(`shape ${spec.name} [${spec.shape.join('x')}] ${spec.layout} ...`);
      const result = await benchShape(spec, systems, bandwidth, { reps, budgetMs: 4000, tolerance: 1e-3, log, probe: () => probeBandwidth(3), native });
      rows.push(...result.rows);
      rows.push(...(standalone?.rows.filter((r) => r.shape === spec.name && r.layout === spec.layout) ?? []));
      checks.push(...result.checks);
      bounds.set(boundKey(spec.name, spec.layout), result.bound);
    }
    const board = { rows, bounds, threads, torch: standalone?.version };
    if (values.svg !== undefined) writeFileSync(values.svg, await toSvg(benchChart(rows)));
    if (values.markdown !== undefined) writeFileSync(values.markdown, formatMarkdown(rows));
    if (values.scoreboard !== undefined) writeFileSync(values.scoreboard, formatScoreboardMarkdown(board));
    if (values.json) console.log(JSON.stringify(rows));
    else console.log(`\n${formatReport(rows, bytesPerElement)}${formatScoreboard(board)}${missing.map((line) => `${line}\n`).join('')}`);
    const failed = checks.filter((c) => !c.ok && c.system.startsWith('normkit'));
    return failed.length === 0 ? 0 : 1;
  } finally {
    gpu?.destroy();
    await stopWebGpu();
    await stopWasmThreads();
  }
}

/** PyTorch's standalone rows for the shapes asked, or null with the reason said. */
async function pytorchStandalone(torch: { python: string; version: string }, threads: number, specs: readonly ShapeSpec[], note: (line: string) => void): Promise<StandaloneResult | null> {
  const started = performance.now();
  note(`PyTorch ${torch.version} standalone (torch.utils.benchmark.Timer.blocked_autorange, ${torch.python}, nothing else of the bench running) ...`);
  try {
    const result = await runPytorchStandalone({ python: [torch.python], threads: [1, threads], shapes: [...new Set(specs.map((s) => s.name))] });
    note(`  ${result.rows.length} rows in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return result;
  } catch (error) {
    note(`PyTorch standalone: not run (${error instanceof Error ? error.message : String(error)})`);
    return null;
  }
}

/** The native probe's kernels as a bandwidth (undefined with the reason said where it cannot run). */
async function nativeBandwidth(note: (line: string) => void): Promise<Bandwidth | undefined> {
  const probe = await probeNative();
  if ('reason' in probe) {
    note(`native bandwidth probe: not run (${probe.reason})`);
    return undefined;
  }
  note(`native bandwidth probe (scripts/native-probe.sh, best samples, GB/s): ${probe.kernels.map((k) => `${describeKernel(k)} ${k.gbps.toFixed(1)}`).join('; ')}`);
  return strongest(probe.kernels);
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
