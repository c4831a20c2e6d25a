// The shared conformance suite: every backend in the record runs every public fixture, in both layouts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runFixtures } from '../src/conformance/run.ts';
import { describeBackends } from './backends.ts';
import { fixtureFiles, loadFixtures } from './helpers.ts';

describeBackends('conformance', ({ name: backend, it: backendIt }) => {
  for (const layout of ['channels-first', 'channels-last'] as const) {
    describe(layout, () => {
      for (const file of fixtureFiles) {
        const fixtures = loadFixtures(file);
        for (const c of fixtures.cases) {
          backendIt(`${file} ${c.name}`, { dtype: c.dtype }, () => {
            const { rows } = runFixtures({ ...fixtures, cases: [c] }, { backend, layout });
            assert.ok(rows.length > 0, 'the case compared nothing');
            for (const row of rows) assert.ok(row.ok, `${row.tensor} step ${row.step}: ${row.error} > ${row.bound} ${row.detail}`);
            // far better than the fixtures' bar, on every backend (webgpu in float-float): float32 at most 1e-6, float64 at most 1e-12 on every tensor
            for (const row of rows) {
              if (row.error === null) continue;
              const limit = c.dtype === 'float32' ? 1e-6 : 1e-12;
              assert.ok(row.error <= limit, `${row.tensor} step ${row.step}: ${row.error} > ${limit}`);
            }
          });
        }
      }
    });
  }
});

describe('conformance runner', () => {
  it('dumps what it computed beside every step', () => {
    const { dump } = runFixtures(loadFixtures('pytorch-batchnorm.json'), { backend: 'js', layout: 'channels-first' });
    const seed = dump.cases.find((c) => c.name === 'seed_two_inputs');
    const step = seed?.steps[0] as { actual?: { output?: { data: number[] } } } | undefined;
    assert.equal(step?.actual?.output?.data.length, 2);
    const single = dump.cases.find((c) => c.name === 'bn1d_single_value_per_channel');
    const errorStep = single?.steps[0] as { actual?: { error?: string } } | undefined;
    assert.match(errorStep?.actual?.error ?? '', /Expected more than 1 value per channel when training, got input size \[1, 3\]/);
  });

  it('fails a case whose expected values are wrong', () => {
    const fixtures = loadFixtures('pytorch-batchnorm.json');
    const c = fixtures.cases.find((k) => k.name === 'bn2d_train')!;
    const step = c.steps[0];
    const truth = step.expect_float64!;
    // both PyTorch's result and the truth moved, so the bar stays at its floor
    const output = { shape: truth.output!.shape, data: truth.output!.data.map((v, i) => (i === 3 ? v + 0.01 : v)) };
    const broken = { ...c, steps: [{ ...step, expect: { ...step.expect, output }, expect_float64: { ...truth, output } }] };
    const { rows } = runFixtures({ ...fixtures, cases: [broken] }, { backend: 'js', layout: 'channels-first' });
    assert.deepEqual(rows.filter((r) => !r.ok).map((r) => r.tensor), ['output']);
  });

  it('fails a step whose expected error does not happen', () => {
    const fixtures = loadFixtures('pytorch-batchnorm.json');
    const c = fixtures.cases.find((k) => k.name === 'bn2d_train')!;
    const broken = { ...c, steps: [{ ...c.steps[0], expect_error: 'Expected more than 1 value per channel' }] };
    const { rows } = runFixtures({ ...fixtures, cases: [broken] }, { backend: 'js', layout: 'channels-first' });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].ok, false);
  });
});
