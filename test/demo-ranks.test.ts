// `normkit run --ranks 3 -- normkit demo mnist --sync-bn --shards 15,20,25`: three processes over WebSocket with
// unequal per-rank batches reach the single-process run's test accuracy at every checkpoint, test loss
// within 1e-6, and rank 0 alone writes the comparison.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'normkit-demo-ranks-'));

after(() => {
  rmSync(out, { recursive: true, force: true });
});

describe('normkit demo mnist --sync-bn under normkit run', () => {
  it('3 processes with 15 + 20 + 25 samples per step match one process at every checkpoint', { timeout: 600_000 }, () => {
    const demo = [process.execPath, '--import', 'tsx', main, 'demo', 'mnist', '--sync-bn', '--shards', '15,20,25', '--steps', '20', '--every', '10', '--out', out];
    const run = spawnSync(process.execPath, ['--import', 'tsx', main, 'run', '--ranks', '3', '--', ...demo], { encoding: 'utf8', timeout: 580_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['sync-bn.json', 'sync-bn.md']);
    const result = JSON.parse(readFileSync(join(out, 'sync-bn.json'), 'utf8')) as { single: { step: number; accuracy: number; loss: number }[]; parallel: { step: number; accuracy: number; loss: number }[]; maxLossDifference: number };
    assert.deepEqual(result.parallel.map((c) => c.step), [0, 10, 20]);
    result.single.forEach((c, k) => {
      assert.equal(result.parallel[k].accuracy, c.accuracy, `step ${c.step} accuracy`);
      assert.ok(Math.abs(result.parallel[k].loss - c.loss) <= 1e-6, `step ${c.step} loss`);
    });
    // the run learned something: the comparison is not of two untrained networks
    assert.ok(result.single[2].loss < result.single[0].loss);
    // rank 0 alone printed the comparison
    assert.equal(run.stdout.split('\n').filter((l) => l.includes('wrote')).length, 1);
    assert.match(run.stdout, /\[rank 0\] wrote /);
  });
});
