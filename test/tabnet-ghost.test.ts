// TabNet's ghost-batch split (ghostSplit 'chunk') against TabNet's GhostBatchNorm run by PyTorch over several steps
// (test/fixtures/tabnet-ghost.json from scripts/make-tabnet-fixture.py), and the default split left as it was.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runFixtures } from '../src/conformance/run.ts';
import { NormkitError } from '../src/errors.ts';
import { parseFixtures } from '../src/io/fixtures.ts';
import type { BackendName } from '../src/kernels/contract.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import { ghostBatchSize } from '../src/nn/ghost.ts';
import { Random, maxAbsDiff, randomTensor, snapshot } from './helpers.ts';

const path = fileURLToPath(new URL('./fixtures/tabnet-ghost.json', import.meta.url));
const fixtures = parseFixtures(readFileSync(path, 'utf8'), path);
const cpuBackends: readonly BackendName[] = ['reference', 'js', 'wasm'];

describe('ghostSplit chunk: TabNet GhostBatchNorm (PyTorch 1.13)', () => {
  for (const backend of cpuBackends) {
    for (const layout of ['channels-first', 'channels-last'] as const) {
      it(`${backend} ${layout}: every case and step within 1e-6 (float32) / 1e-12 (float64) of PyTorch in float64`, () => {
        const { rows } = runFixtures(fixtures, { backend, layout });
        assert.ok(rows.length >= fixtures.cases.length * 4 * 6, `compared only ${rows.length} tensors`);
        for (const row of rows) {
          assert.ok(row.ok, `${row.case} step ${row.step} ${row.tensor}: ${row.error} > ${row.bound} ${row.detail}`);
          const limit = row.case.endsWith('float32') ? 1e-6 : 1e-12;
          assert.ok(row.error !== null && row.error <= limit, `${row.case} step ${row.step} ${row.tensor}: ${row.error} > ${limit}`);
        }
      });
    }
  }

  it("matches torch.chunk's sizes: ceil(N / ceil(N / v)), possibly fewer ghost batches than ceil(N / v)", () => {
    // torch.arange(n).chunk(ceil(n / v)) sizes, printed by PyTorch 1.13
    assert.equal(ghostBatchSize(9, 4, 'chunk'), 3); // [3, 3, 3]
    assert.equal(ghostBatchSize(10, 3, 'chunk'), 3); // [3, 3, 3, 1]
    assert.equal(ghostBatchSize(20, 6, 'chunk'), 5); // [5, 5, 5, 5]
    assert.equal(ghostBatchSize(6, 4, 'chunk'), 3); // [3, 3]
    assert.equal(ghostBatchSize(9, 4, 'fixed'), 4); // [4, 4, 1]
    assert.equal(ghostBatchSize(3, 8, 'chunk'), 3);
  });

  it('(9, 3) with v = 4: the default fixed split throws single-value on its last ghost batch of one sample, chunk runs [3, 3, 3]', () => {
    const x = randomTensor(new Random(5), [9, 3]);
    const fixed = new BatchNorm1d(3, { dtype: 'float64', virtualBatchSize: 4 });
    assert.equal(fixed.ghostSplit, 'fixed');
    const before = snapshot(fixed);
    assert.throws(() => fixed.forward(x), (e: unknown) => e instanceof NormkitError && e.code === 'single-value');
    assert.equal(snapshot(fixed), before);
    const chunk = new BatchNorm1d(3, { dtype: 'float64', virtualBatchSize: 4, ghostSplit: 'chunk' });
    const plain = new BatchNorm1d(3, { dtype: 'float64' });
    const y = chunk.forward(x);
    const ys: number[] = [];
    for (let k = 0; k < 3; k++) ys.push(...plain.forward({ data: x.data.slice(9 * k, 9 * k + 9), shape: [3, 3] }).data);
    assert.ok(maxAbsDiff(y.data, ys) < 1e-14);
    assert.equal(chunk.numBatchesTracked, 3);
  });

  it('(9, 3, 4) with v = 4: fixed is [4, 4, 1], chunk [3, 3, 3]; they differ', () => {
    const x = randomTensor(new Random(6), [9, 3, 4]);
    const fixed = new BatchNorm1d(3, { dtype: 'float64', virtualBatchSize: 4 });
    const chunk = new BatchNorm1d(3, { dtype: 'float64', virtualBatchSize: 4, ghostSplit: 'chunk' });
    const yFixed = fixed.forward(x);
    const yChunk = chunk.forward(x);
    assert.equal(fixed.numBatchesTracked, 3);
    assert.equal(chunk.numBatchesTracked, 3);
    assert.ok(maxAbsDiff(yFixed.data, yChunk.data) > 0.1);
  });

  it('rejects a bad ghostSplit in the constructor and the setter, leaving the layer as it was', () => {
    for (const bad of ['equal', 'Chunk', 1, null]) {
      assert.throws(
        () => new BatchNorm1d(3, { virtualBatchSize: 4, ghostSplit: bad as 'chunk' }),
        (e: unknown) => e instanceof NormkitError && e.code === 'option' && /ghostSplit must be 'fixed' or 'chunk'/.test(e.message),
      );
      const bn = new BatchNorm1d(3, { virtualBatchSize: 4, ghostSplit: 'chunk' });
      assert.throws(() => {
        bn.ghostSplit = bad as 'chunk';
      }, NormkitError);
      assert.equal(bn.ghostSplit, 'chunk');
    }
  });
});
