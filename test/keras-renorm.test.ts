// Keras 3's Batch Renormalization (renorm { convention: 'keras' }) against Keras's own results over several steps
// (fixtures/keras-renorm.json, Keras 3.15 in float64 and float32), its state dict, and its errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runKerasFixtures } from '../src/conformance/keras.ts';
import { NormkitError } from '../src/errors.ts';
import { parseKerasFixtures } from '../src/io/keras-fixtures.ts';
import type { BackendName } from '../src/kernels/contract.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import { Random, fixtureDir, maxAbsDiff, randomTensor, snapshot } from './helpers.ts';

const fixtures = parseKerasFixtures(readFileSync(fixtureDir + 'keras-renorm.json', 'utf8'), 'keras-renorm.json');
const cpuBackends: readonly BackendName[] = ['reference', 'js', 'wasm'];

describe("renorm { convention: 'keras' }: Keras 3's Batch Renormalization", () => {
  for (const backend of cpuBackends) {
    for (const layout of ['channels-last', 'channels-first'] as const) {
      it(`${backend} ${layout}: every case and step, float32 within 1e-6 and float64 within 1e-12 of Keras in float64`, () => {
        const { rows } = runKerasFixtures(fixtures, { backend, layout });
        const steps = fixtures.cases.reduce((n, c) => n + c.steps.length, 0);
        // each step compares output, grad_input, grad_beta and five variables at least, in two dtypes
        assert.ok(rows.length >= steps * 8 * 2, `compared only ${rows.length} tensors`);
        for (const row of rows) {
          assert.ok(row.ok, `${row.case} step ${row.step} ${row.tensor}: ${row.error} > ${row.bound} ${row.detail}`);
          const limit = row.case.endsWith('(float32)') ? 1e-6 : 1e-12;
          assert.ok(row.error !== null && row.error <= limit, `${row.case} step ${row.step} ${row.tensor}: ${row.error} > ${limit}`);
        }
      });
    }
  }

  it('differs from the default PyTorch-style renorm after the first step (separate renorm statistics, rmin, moving stddev)', () => {
    const random = new Random(11);
    const keras = new BatchNorm1d(3, { dtype: 'float64', eps: 1e-3, renorm: { convention: 'keras', rmin: 0.5, rmax: 2, dmax: 1, momentum: 0.9, renormMomentum: 0.9 } });
    const torch = new BatchNorm1d(3, { dtype: 'float64', eps: 1e-3, momentum: 0.1, renorm: { rmax: 2, dmax: 1 } });
    let gap = 0;
    for (let step = 0; step < 3; step++) {
      const x = randomTensor(random, [8, 3], 'float64', 1, 2);
      gap = maxAbsDiff(keras.forward(x).data, torch.forward(x).data);
    }
    assert.ok(gap > 1e-3, `outputs differ by only ${gap}`);
  });

  it("keeps Keras's variables under Keras's names, and loads them all or nothing", () => {
    const bn = new BatchNorm2d(2, { layout: 'channels-last', renorm: { convention: 'keras', rmax: 3, dmax: 5 } });
    const state = bn.stateDict();
    assert.deepEqual(Object.keys(state), ['gamma', 'beta', 'moving_mean', 'moving_variance', 'moving_stddev', 'renorm_mean', 'renorm_stddev']);
    // Keras's initial values: moving_stddev and renorm_stddev sqrt(moving_variance) = 1, renorm_mean 0
    assert.deepEqual(Array.from(state.moving_stddev as Float32Array), [1, 1]);
    assert.deepEqual(Array.from(state.renorm_mean as Float32Array), [0, 0]);
    bn.forward(randomTensor(new Random(2), [4, 3, 3, 2], 'float32'));
    const trained = bn.stateDict();
    const copy = new BatchNorm2d(2, { layout: 'channels-last', renorm: { convention: 'keras', rmax: 3, dmax: 5 } });
    copy.loadStateDict(trained);
    assert.equal(snapshot(copy), snapshot(bn));
    const before = snapshot(copy);
    const { renorm_stddev: _dropped, ...partial } = trained;
    assert.throws(() => { copy.loadStateDict(partial); }, (e: unknown) => e instanceof NormkitError && /Missing key\(s\) in state_dict: "renorm_stddev"/.test(e.message));
    assert.throws(() => { copy.loadStateDict({ ...trained, running_var: [1, 1] }); }, /Unexpected key\(s\) in state_dict: "running_var"/);
    const strictCopy = new BatchNorm2d(2, { nonFinite: 'throw', renorm: { convention: 'keras' } });
    assert.throws(() => { strictCopy.loadStateDict({ ...trained, moving_variance: [1, -1] }); }, /moving_variance\[1\] is negative/);
    assert.equal(snapshot(copy), before);
  });

  it('rejects bad options with a clear text', () => {
    const cases: [unknown, RegExp][] = [
      [{ convention: 'keras', rmin: 1.5 }, /rmin must be a number in \[0, 1\]/],
      [{ convention: 'keras', rmin: -0.1 }, /rmin must be a number in \[0, 1\]/],
      [{ convention: 'keras', rmax: 0.5 }, /rmax must be a number >= 1/],
      [{ convention: 'keras', dmax: -1 }, /dmax must be a number >= 0/],
      [{ convention: 'keras', momentum: 1.5 }, /momentum must be a number in \[0, 1\]/],
      [{ convention: 'keras', renormMomentum: '0.9' }, /renormMomentum must be a number in \[0, 1\]/],
      [{ convention: 'keras', renorm_momentum: 0.9 }, /unexpected key 'renorm_momentum'/],
      [{ convention: 'tf', rmax: 2, dmax: 1 }, /renorm.convention must be 'pytorch' \(the default\) or 'keras'/],
    ];
    for (const [renorm, message] of cases) {
      assert.throws(() => new BatchNorm1d(3, { renorm: renorm as never }), (e: unknown) => e instanceof NormkitError && e.code === 'option' && message.test(e.message), JSON.stringify(renorm));
    }
    assert.throws(() => new BatchNorm1d(3, { momentum: 0.1, renorm: { convention: 'keras' } }), /give Keras's momentum inside renorm/);
    assert.throws(() => new BatchNorm1d(3, { trackRunningStats: false, renorm: { convention: 'keras' } }), /renorm needs running statistics/);
  });

  it('ramps clips between steps but keeps the convention the layer was built with', () => {
    const keras = new BatchNorm1d(3, { renorm: { convention: 'keras', rmax: 1, dmax: 0 } });
    keras.renorm = { convention: 'keras', rmin: 0.2, rmax: 5, dmax: 2 };
    assert.equal(keras.renorm?.rmax, 5);
    assert.throws(() => (keras.renorm = { rmax: 2, dmax: 1 }), /built with renorm \{ convention: 'keras' \}/);
    assert.throws(() => (keras.renorm = null), /built with renorm \{ convention: 'keras' \}/);
    const torch = new BatchNorm1d(3, { renorm: { rmax: 2, dmax: 1 } });
    assert.throws(() => (torch.renorm = { convention: 'keras' }), /built without Keras renorm/);
    assert.deepEqual(torch.renorm, { rmax: 2, dmax: 1 });
  });

  it('leaves every variable as it was when a step throws (single value, non-finite under nonFinite throw)', () => {
    const bn = new BatchNorm1d(2, { nonFinite: 'throw', renorm: { convention: 'keras', rmax: 3, dmax: 5 } });
    bn.forward(randomTensor(new Random(3), [6, 2], 'float32'));
    const before = snapshot(bn);
    assert.throws(() => bn.forward(randomTensor(new Random(4), [1, 2], 'float32')), (e: unknown) => e instanceof NormkitError && e.code === 'single-value');
    const bad = randomTensor(new Random(5), [6, 2], 'float32');
    bad.data[3] = Number.NaN;
    assert.throws(() => bn.forward(bad), (e: unknown) => e instanceof NormkitError && e.code === 'non-finite');
    assert.equal(snapshot(bn), before);
  });

  it('`normkit conformance FILE` runs keras-renorm/1, and --dump writes actual beside expect per step', () => {
    const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
    const out = join(mkdtempSync(join(tmpdir(), 'normkit-')), 'dump.json');
    const run = spawnSync(process.execPath, [cli, 'conformance', fixtureDir + 'keras-renorm.json', '--backend', 'js', '--dump', out], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /backend js, layout channels-first: \d+ passed, 0 failed, 0 skipped/);
    assert.match(run.stdout, /rmin_independent_no_scale \(float32\)\s+0\s+train\s+moving_stddev/);
    const dump = JSON.parse(readFileSync(out, 'utf8')) as { format: string; cases: { steps: { actual: Record<string, unknown>; actual_float64: Record<string, unknown> }[] }[] };
    assert.equal(dump.format, 'keras-renorm/1');
    for (const step of dump.cases.flatMap((c) => c.steps)) {
      for (const key of ['output', 'grad_input', 'moving_mean', 'moving_variance', 'moving_stddev', 'renorm_mean', 'renorm_stddev']) {
        assert.ok(key in step.actual && key in step.actual_float64, key);
      }
    }
  });
});
