// The benchmark command end to end on the small shape: rows in the documented format, every path checked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { benchShape } from '../src/bench/harness.ts';
import { normkitSystems } from '../src/bench/normkit.ts';
import type { Bandwidth } from '../src/bench/probe.ts';
import { strongest } from '../src/bench/probe.ts';
import { callsPerSample } from '../src/bench/timing.ts';
import { bytesPerElement, shapeSpecs } from '../src/bench/types.ts';
import { useWebGpu } from './webgpu-setup.ts';

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

interface Row {
  system: string;
  threads: number;
  shape: string;
  layout: string;
  op: string;
  median_ms: number;
  min_ms: number;
}

describe('normkit bench', () => {
  it('prints JSON rows for normkit, the peers and the DRAM bound, and writes the chart', async () => {
    // webgpu rows wherever an adapter exists (CI: SwiftShader)
    const gpu = await useWebGpu();
    const svg = join(mkdtempSync(join(tmpdir(), 'normkit-bench-')), 'chart.svg');
    // PyTorch's rows are left to bench-peers.test.ts: here its absence is reported with the install command
    const env = { ...process.env, NORMKIT_TORCH_PYTHON: '/nonexistent/python' };
    const run = spawnSync(process.execPath, [cli, 'bench', '--shape', 'C', '--reps', '3', '--no-native-probe', '--json', '--svg', svg], { encoding: 'utf8', env });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /^pytorch: not run \(no Python with torch \(\/nonexistent\/python: .*\): pip install torch/m);
    const rows = JSON.parse(run.stdout) as Row[];
    for (const row of rows) {
      assert.deepEqual(Object.keys(row).sort(), ['layout', 'median_ms', 'min_ms', 'op', 'shape', 'system', 'threads']);
      assert.ok(row.min_ms > 0 && row.min_ms <= row.median_ms, JSON.stringify(row));
      assert.equal(row.shape, 'C');
    }
    const systems = new Set(rows.map((r) => r.system));
    const gpuSystems = gpu.ok ? ['normkit-webgpu', 'normkit-webgpu-resident'] : [];
    for (const name of ['normkit-js', 'normkit-wasm', 'normkit-wasm-resident', 'dram-bound', 'tfjs-cpu', 'tfjs-wasm', 'onnxruntime-node', ...gpuSystems]) {
      assert.ok(systems.has(name), `no rows for ${name}`);
    }
    for (const op of ['forward', 'backward', 'forward+backward', 'inference']) {
      assert.ok(rows.some((r) => r.system === 'normkit-wasm' && r.op === op), `normkit-wasm lacks ${op}`);
    }
    assert.match(readFileSync(svg, 'utf8'), /^<svg[^>]*>.*normkit-wasm/s);
  });

  it('puts the DRAM bound at the strongest bandwidth probed: before or after the shape, the opening probe, or native code', async () => {
    const spec = shapeSpecs.find((s) => s.name === 'C');
    assert.ok(spec !== undefined);
    const systems = normkitSystems(null, false).filter((s) => s.name === 'normkit-js');
    const n = spec.shape.reduce((p, d) => p * d, 1);
    const kernel = (name: string, gbps: number): Bandwidth => strongest([{ kernel: name, threads: 1, gbps }]);
    // probed at 10 before and 30 after the rounds, opening at 1: the bound at 30 (after); a native 50 beats them all; a native 20 does not
    for (const [native, gbps, source] of [
      [undefined, 30, 'after, 1 thread'],
      [kernel('native sum', 50), 50, 'native sum, 1 thread'],
      [kernel('native copy', 20), 30, 'after, 1 thread'],
    ] as const) {
      const speeds = [kernel('before', 10), kernel('after', 30)];
      let probed = 0;
      const { rows, bound } = await benchShape(spec, systems, kernel('opening', 1), { reps: 3, budgetMs: 4000, tolerance: 1e-3, log: () => undefined, probe: () => speeds[probed++], native });
      assert.equal(probed, 2);
      assert.deepEqual(bound, { gbps, source });
      for (const op of ['forward', 'backward', 'forward+backward', 'inference'] as const) {
        const row = rows.find((r) => r.system === 'dram-bound' && r.op === op);
        assert.ok(row !== undefined, op);
        assert.ok(Math.abs(row.median_ms - (n * bytesPerElement[op]) / (gbps * 1e6)) < 1e-12, `${op}: ${row.median_ms}`);
      }
    }
    assert.deepEqual(bytesPerElement, { forward: 8, backward: 12, 'forward+backward': 20, inference: 8 });
  });

  it('sizes samples from a warm call: a cold first call neither sets the count nor becomes a sample', async () => {
    // the first call 40x slow (a cold one), the rest 0.1 ms a call
    const seen: number[] = [];
    const time = (calls: number): Promise<number> => {
      seen.push(calls);
      return Promise.resolve(seen.length === 1 ? 4 : 0.1);
    };
    assert.deepEqual(await callsPerSample(time), { calls: 20, once: 0.1 });
    assert.deepEqual(seen, [1, 1, 1]);
    // a slow op stays at one call a sample, its warm call the first sample
    let slowCalls = 0;
    const slow = (): Promise<number> => Promise.resolve(++slowCalls === 1 ? 9 : 5);
    assert.deepEqual(await callsPerSample(slow), { calls: 1, once: 5 });
  });

  it('refuses bad numbers and unwritable outputs in one line, before any work', () => {
    for (const [args, message] of [
      [['--reps', '-1'], /^normkit bench: --reps must be an integer from 1 to 1000, got -1\n$/],
      [['--threads', '0'], /^normkit bench: --threads must be an integer from 1 to 64, got 0\n$/],
      [['--svg', '/proc/x'], /^normkit bench: --svg \/proc\/x: cannot write there \(ENOENT\)\n$/],
      [['--markdown', '/nonexistent/dir/x.md'], /^normkit bench: --markdown \/nonexistent\/dir\/x.md: cannot write there \(ENOENT\)\n$/],
      [['--scoreboard', '/nonexistent/dir/x.md'], /^normkit bench: --scoreboard \/nonexistent\/dir\/x.md: cannot write there \(ENOENT\)\n$/],
    ] as const) {
      const run = spawnSync(process.execPath, [cli, 'bench', '--shape', 'C', ...args], { encoding: 'utf8', timeout: 5000 });
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.equal(run.stdout, '', 'no probe or row was run');
    }
  });
});
