// The built `normkit` command, run as a user runs it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { fixtureDir } from './helpers.ts';
import { useWebGpu } from './webgpu-setup.ts';

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const fixtures = ['pytorch-batchnorm.json', 'pytorch-norms.json'].map((f) => fixtureDir + f);

function normkit(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('normkit CLI', () => {
  it('is executable after the build (npx normkit runs dist/cli/main.js itself; tsc writes it without the bit)', () => {
    assert.notEqual(statSync(cli).mode & 0o111, 0, `mode ${(statSync(cli).mode & 0o777).toString(8)}`);
    const run = spawnSync(cli, ['--help'], { encoding: 'utf8' });
    assert.equal(run.status, 0, `${String(run.error)} ${run.stderr}`);
    assert.match(run.stdout, /normkit/);
  });

  for (const backend of ['wasm', 'js', 'reference']) {
    for (const layout of ['channels-first', 'channels-last']) {
      it(`conformance passes every public fixture (${backend}, ${layout})`, () => {
        const run = normkit('conformance', ...fixtures, '--backend', backend, '--layout', layout);
        assert.equal(run.status, 0, run.stdout + run.stderr);
        assert.match(run.stdout, new RegExp(`backend ${backend}, layout ${layout}: 209 passed, 0 failed, 0 skipped`));
        assert.match(run.stdout, /seed_two_inputs\s+0\s+train\s+grad_input/);
      });
    }
  }

  it('conformance on webgpu passes every float32 fixture and skips float64 ones with the reason', async (t) => {
    const gpu = await useWebGpu();
    if (!gpu.ok) {
      t.skip(gpu.reason);
      return;
    }
    const run = normkit('conformance', ...fixtures, '--backend', 'webgpu', '--layout', 'channels-last');
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stderr, /webgpu adapter: /);
    const summary = /backend webgpu, layout channels-last: (\d+) passed, 0 failed, (\d+) skipped/.exec(run.stdout);
    assert.ok(summary !== null, run.stdout);
    assert.ok(Number(summary[1]) > 100 && Number(summary[2]) > 0, summary[0]);
    assert.match(run.stdout, /skipped: the webgpu backend computes in float32 only/);
  });

  it('--json reports every row and --dump writes what we computed beside every step', () => {
    const dir = mkdtempSync(join(tmpdir(), 'normkit-'));
    const out = join(dir, 'dump.json');
    const run = normkit('conformance', fixtures[0], '--json', '--dump', out);
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { failed: number; passed: number; rows: { ok: boolean }[] };
    assert.equal(report.failed, 0);
    assert.equal(report.rows.length, report.passed);
    const dump = JSON.parse(readFileSync(out, 'utf8')) as { format: string; cases: { steps: { actual: Record<string, unknown> }[] }[] };
    assert.equal(dump.format, 'normalization-fixtures/1');
    const steps = dump.cases.flatMap((c) => c.steps);
    assert.ok(steps.length > 10);
    for (const step of steps) assert.ok('output' in step.actual || 'error' in step.actual);
  });

  it('exits non-zero when a tensor does not conform', () => {
    const file = JSON.parse(readFileSync(fixtures[0], 'utf8')) as { cases: { name: string; steps: { expect: { grad_weight: number[] }; expect_float64: { grad_weight: number[] } }[] }[] };
    const c = file.cases.find((k) => k.name === 'bn2d_train')!;
    c.steps[0].expect.grad_weight[0] += 0.5;
    c.steps[0].expect_float64.grad_weight[0] += 0.5;
    const path = join(mkdtempSync(join(tmpdir(), 'normkit-')), 'broken.json');
    writeFileSync(path, JSON.stringify(file));
    const run = normkit('conformance', path);
    assert.equal(run.status, 1);
    assert.match(run.stdout, /bn2d_train\s+0\s+train\s+grad_weight.*FAIL/);
    assert.match(run.stdout, /1 failed/);
  });

  it('gradcheck passes on random shapes and on a given one, and prints the worst error per input', () => {
    const run = normkit('gradcheck', '--cases', '1');
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /gradcheck: 15 passed, 0 failed/);
    const given = normkit('gradcheck', '--module', 'GroupNorm', '--shape', '2,4,3', '--options', '{"numGroups": 2, "numChannels": 4}', '--layout', 'channels-first');
    assert.equal(given.status, 0, given.stdout + given.stderr);
    assert.match(given.stdout, /GroupNorm\s+channels-first\s+\[2,4,3\]\s+weight/);
  });

  it('says what is wrong with bad arguments', () => {
    const backend = normkit('conformance', fixtures[0], '--backend', 'cuda');
    assert.equal(backend.status, 2);
    assert.match(backend.stderr, /unknown backend 'cuda': expected one of wasm, js, reference/);
    const unknown = normkit('frobnicate');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const flag = normkit('gradcheck', '--bogus');
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /Unknown option '--bogus'/);
  });
});
