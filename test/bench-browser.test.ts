// `normkit bench --browser`: rows from several page loads folded into one with their spread, and one real run in headless Chromium.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { acrossLoads, formatSpreadMarkdown } from '../src/bench/browser/spread.ts';
import type { Row } from '../src/bench/types.ts';
import { ensureChromium } from './browser.ts';

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

const row = (system: string, op: Row['op'], ms: number): Row => ({ system, threads: 1, shape: 'C', layout: 'channels-first', op, median_ms: ms, min_ms: ms * 0.9 });

describe('bench --browser', () => {
  it('folds page loads into the median of their medians, the least min, and slowest / fastest', () => {
    const rows = acrossLoads([
      [row('normkit-wasm', 'forward', 2), row('dram-bound', 'forward', 0.5)],
      [row('normkit-wasm', 'forward', 6), row('dram-bound', 'forward', 0.5)],
      [row('normkit-wasm', 'forward', 3), row('dram-bound', 'forward', 0.5)],
    ]);
    const wasm = rows.find((r) => r.system === 'normkit-wasm');
    assert.deepEqual([wasm?.median_ms, wasm?.min_ms, wasm?.loads_ms, wasm?.spread], [3, 1.8, [2, 6, 3], 3]);
    assert.match(formatSpreadMarkdown(rows), /\| C \| forward \| 0\.50 \| 3\.00 ×3\.00 \|/);
  });

  it('runs normkit in headless Chromium, cross-origin isolated, on 1 thread and on Web Workers', () => {
    ensureChromium();
    const run = spawnSync(process.execPath, [cli, 'bench', '--browser', '--shape', 'C', '--reps', '1', '--loads', '2', '--no-peers', '--no-webgpu', '--systems', 'normkit-wasm', '--threads', '2', '--json'], {
      encoding: 'utf8',
      timeout: 180_000,
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /crossOriginIsolated true, \d+ logical cores, normkit wasm on 2 threads/);
    const { rows } = JSON.parse(run.stdout) as { rows: (Row & { loads_ms: number[] })[] };
    for (const [system, threads] of [['normkit-wasm', 1], ['normkit-wasm', 2], ['normkit-wasm-resident', 2]] as const) {
      const ops = rows.filter((r) => r.system === system && r.threads === threads).map((r) => r.op);
      assert.deepEqual(ops.sort(), ['backward', 'forward', 'forward+backward', 'inference'], `${system} (${threads}t)`);
    }
    for (const r of rows) assert.equal(r.loads_ms.length, 2, JSON.stringify(r));
  });
});
