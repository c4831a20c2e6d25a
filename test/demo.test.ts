// A short MNIST demo run (the full one is `normkit demo mnist`): every output is written and its numbers are sane.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

describe('normkit demo mnist (short run)', () => {
  it('trains both networks and writes charts, logs and the summary', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'normkit-demo-')), 'out');
    const run = spawnSync(process.execPath, [cli, 'demo', 'mnist', '--steps', '120', '--every', '40', '--out', out], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    // not a terminal: plain progress lines
    assert.match(run.stderr, /batchnorm step 120\/120 \d+ steps\/s loss \d\.\d{4} test accuracy 0\.\d{4}/);
    for (const name of ['accuracy', 'percentiles-baseline', 'percentiles-batchnorm']) {
      assert.match(readFileSync(join(out, `${name}.svg`), 'utf8'), /^<svg[\s\S]*<\/svg>\n$/);
      const png = readFileSync(join(out, `${name}.png`));
      assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    }
    const rows = readFileSync(join(out, 'log.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    assert.equal(rows.length, 2 * 4);
    for (const [network, step, accuracy, loss, p15, p50, p85] of rows) {
      assert.ok(network === 'baseline' || network === 'batchnorm');
      assert.ok([0, 40, 80, 120].includes(Number(step)));
      assert.ok(Number(accuracy) >= 0 && Number(accuracy) <= 1);
      assert.ok(Number.isFinite(Number(loss)) && Number(loss) > 0);
      assert.ok(Number(p15) <= Number(p50) && Number(p50) <= Number(p85));
    }
    const final = (network: string) => Number(rows.find((r) => r[0] === network && r[1] === '120')?.[2]);
    // BN learns within 120 steps; the sigmoid baseline has barely started (Ioffe & Szegedy, Fig. 1a)
    assert.ok(final('batchnorm') > 0.6, `batchnorm accuracy ${final('batchnorm')}`);
    assert.ok(final('batchnorm') > final('baseline'));
    const log = JSON.parse(readFileSync(join(out, 'log.json'), 'utf8')) as { runs: { network: string }[] };
    assert.deepEqual(log.runs.map((r) => r.network), ['baseline', 'batchnorm']);
    assert.match(readFileSync(join(out, 'summary.md'), 'utf8'), /\| 120 \| 0\.\d{4} \| 0\.\d{4} \|/);
  });

  it('--workers 2 --sync-bn: data-parallel on two worker threads matches the single-process run on the same batches', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'normkit-demo-')), 'out');
    const run = spawnSync(process.execPath, [cli, 'demo', 'mnist', '--workers', '2', '--sync-bn', '--steps', '20', '--every', '10', '--out', out], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(readFileSync(join(out, 'sync-bn.json'), 'utf8')) as { single: { step: number; loss: number }[]; parallel: { step: number; loss: number }[]; maxAccuracyDifference: number; maxLossDifference: number };
    assert.deepEqual(result.parallel.map((c) => c.step), [0, 10, 20]);
    assert.deepEqual(result.single.map((c) => c.step), [0, 10, 20]);
    assert.equal(result.maxAccuracyDifference, 0);
    assert.ok(result.maxLossDifference < 1e-5, String(result.maxLossDifference));
    // training changed the network: the comparison is not of two untrained copies
    assert.ok(result.single[2].loss < result.single[0].loss - 0.1, `loss ${result.single[0].loss} -> ${result.single[2].loss}`);
    assert.match(readFileSync(join(out, 'sync-bn.md'), 'utf8'), /\| 20 \| 0\.\d{4} \| 0\.\d{4} \|/);
  });

  it('rejects bad options', () => {
    const run = spawnSync(process.execPath, [cli, 'demo', 'mnist', '--steps', '0'], { encoding: 'utf8' });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /^normkit demo: --steps must be an integer from 1 to 100000, got 0\n$/);
    const unknown = spawnSync(process.execPath, [cli, 'demo', 'cifar'], { encoding: 'utf8' });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown demo 'cifar'/);
    const workers = spawnSync(process.execPath, [cli, 'demo', 'mnist', '--workers', '7', '--sync-bn'], { encoding: 'utf8' });
    assert.equal(workers.status, 2);
    assert.match(workers.stderr, /--workers must divide the global batch of 60/);
  });
});
