// The command's answer to bad input (issue 15): one line naming the problem, a non-zero exit, no stack
// trace, no hang, and no work done before an output path is found unwritable.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fixtureDir } from './helpers.ts';

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

function normkit(...args: string[]): { status: number | null; output: string; ms: number } {
  const started = performance.now();
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, output: result.stdout + result.stderr, ms: performance.now() - started };
}

function expectOneLine(args: string[], message: RegExp): void {
  const run = normkit(...args);
  assert.equal(run.status, 2, `exit ${run.status} for normkit ${args.join(' ')}:\n${run.output}`);
  const lines = run.output.trim().split('\n');
  assert.equal(lines.length, 1, `more than one line for normkit ${args.join(' ')}:\n${run.output}`);
  assert.match(lines[0], message);
  assert.doesNotMatch(run.output, /\n\s+at /, 'a stack trace');
}

describe('normkit CLI: bad input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'normkit-cli-'));
  const fixture = JSON.parse(readFileSync(join(fixtureDir, 'pytorch-batchnorm.json'), 'utf8')) as { cases: { options: Record<string, unknown> }[] };
  const huge = join(dir, 'huge.json');
  writeFileSync(huge, JSON.stringify({ ...fixture, cases: [{ ...fixture.cases[0], options: { ...fixture.cases[0].options, numFeatures: 2 ** 40 } }] }));
  const empty = join(dir, 'empty.json');
  writeFileSync(empty, JSON.stringify({ format: 'normalization-fixtures/1', cases: [] }));

  it('conformance: a missing file, a directory, no cases, a size past the limit, an unwritable --dump', () => {
    expectOneLine(['conformance', join(dir, 'missing.json')], /^normkit conformance: .*missing\.json: no such file$/);
    expectOneLine(['conformance', dir], /is a directory, expected a file$/);
    expectOneLine(['conformance', empty], /empty\.json: no cases to run$/);
    expectOneLine(['conformance', huge], /numFeatures must be at most 4294967295, got 1099511627776$/);
    const dump = normkit('conformance', join(fixtureDir, 'pytorch-batchnorm.json'), '--dump', '/proc/x');
    assert.equal(dump.status, 2, dump.output);
    assert.match(dump.output, /^normkit conformance: --dump \/proc\/x: cannot write there/);
    assert.doesNotMatch(dump.output, /passed/, 'the cases ran before the path was checked');
  });

  it('gradcheck: shapes and options that cannot be run', () => {
    expectOneLine(['gradcheck', '--shape', '1e5,1e5,1e5,1e5'], /has 100000000000000000000 elements; gradcheck perturbs each one, so it takes at most 10000$/);
    expectOneLine(['gradcheck', '--shape', '4,3', '--options', '{bad'], /--options must be a JSON object/);
    expectOneLine(['gradcheck', '--options', '{bad'], /--options configures the module for a given --shape: give --shape too$/);
    expectOneLine(['gradcheck', '--shape', 'abc'], /--shape must be comma-separated positive integers like 2,3,4,4, got 'abc'$/);
    expectOneLine(['gradcheck', '--cases', '-1'], /--cases must be an integer from 1 to 1000, got -1$/);
    expectOneLine(['gradcheck', '--module', 'BatchNorm9d'], /--module must be one of/);
  });

  it('demo: negative numbers are values, and unwritable --out fails before training, without hanging on /proc', () => {
    expectOneLine(['demo', 'mnist', '--steps', '-1'], /--steps must be an integer from 1 to 100000, got -1/);
    expectOneLine(['demo', 'mnist', '--lr', '-1'], /--lr must be a finite number > 0 and at most 100, got -1/);
    for (const out of ['/proc/forbidden', '/etc/passwd/x']) {
      const run = normkit('demo', 'mnist', '--steps', '20', '--out', out);
      assert.equal(run.status, 2, run.output);
      assert.match(run.output, new RegExp(`^normkit demo: --out ${out}: `));
      assert.doesNotMatch(run.output, /MNIST|step/, 'training started before the path was checked');
      assert.ok(run.ms < 10_000, `took ${run.ms.toFixed(0)} ms`);
    }
  });
});
