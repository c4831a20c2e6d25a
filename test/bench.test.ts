// The benchmark command end to end on the small shape: rows in the documented format, every path checked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
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
    const run = spawnSync(process.execPath, [cli, 'bench', '--shape', 'C', '--reps', '3', '--json', '--svg', svg], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
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
});
