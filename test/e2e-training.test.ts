// The explainer's training view against PyTorch's semantics computed here, with the reference backend's
// batch statistics: running_mean/var by momentum or by the cumulative average, num_batches_tracked, and the
// same new batch in train mode (batch statistics) and eval mode (running statistics) — attributes and text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { normView } from '../src/core/layout.ts';
import { Random } from '../src/random.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { closeToShown, usePage } from './e2e-page.ts';

interface TrainingCase {
  momentum: number | null;
  steps: number;
  seed: number;
  gamma: number;
  beta: number;
  eps: number;
}

interface Expected {
  rows: { x: number[]; mean: number; var: number; varUnbiased: number; runningMean: number; runningVar: number; tracked: number }[];
  evalX: number[];
  trainY: number[];
  evalY: number[];
}

const BATCH = 4;

/** The page's batches: N(2, 1.5²), BATCH values each, drawn in order from one generator. */
function batchesOf(c: TrainingCase): number[][] {
  const random = new Random(c.seed);
  return Array.from({ length: c.steps + 1 }, () => Array.from(random.normals(BATCH, 2, 1.5)));
}

/** PyTorch's BatchNorm1d(1) training steps and eval on these batches, written out: running = (1 - f)·running + f·batch stat. */
function expected(c: TrainingCase, batches: readonly number[][]): Expected {
  const view = normView({ kind: 'batch' }, [BATCH, 1], 'channels-first');
  const stats = (x: number[]) => referenceNorm({ x, dy: x.map(() => 0), view, gamma: [c.gamma], beta: [c.beta], eps: c.eps });
  let [runningMean, runningVar, tracked] = [0, 1, 0];
  const rows = batches.slice(0, c.steps).map((x) => [...x]).map((x) => {
    const r = stats(x);
    const varUnbiased = (r.var[0] * BATCH) / (BATCH - 1);
    tracked += 1;
    const f = c.momentum ?? 1 / tracked;
    runningMean = (1 - f) * runningMean + f * r.mu[0];
    runningVar = (1 - f) * runningVar + f * varUnbiased;
    return { x, mean: r.mu[0], var: r.var[0], varUnbiased, runningMean, runningVar, tracked };
  });
  const evalX = [...batches[c.steps]];
  return {
    rows,
    evalX,
    trainY: Array.from(stats(evalX).y),
    evalY: evalX.map((x) => (c.gamma * (x - runningMean)) / Math.sqrt(runningVar + c.eps) + c.beta),
  };
}

const near = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));

async function assertTraining(page: Page, c: TrainingCase, where: string): Promise<void> {
  const rows = await page.$$eval('[data-train-step]', (trs) =>
    trs.map((tr) => ({
      attrs: Object.fromEntries(Object.entries((tr as HTMLElement).dataset)),
      cells: [...tr.querySelectorAll('td .cell-value')].map((span) => span.textContent),
    })),
  );
  assert.equal(rows.length, c.steps + 1, `${where}: a start row and one per step`);
  assert.deepEqual([rows[0].attrs.runningMean, rows[0].attrs.runningVar, rows[0].attrs.tracked], ['0', '1', '0']);
  const evalX = await page.$$eval('[data-eval-row]', (trs) => trs.map((tr) => Number((tr as HTMLElement).dataset.x)));
  // the page draws its batches from normkit's Random in its browser: equal to ours up to the last bits of Math.log/cos
  const pageBatches = [...rows.slice(1).map((row) => (row.attrs.x ?? '').split(',').map(Number)), evalX];
  batchesOf(c).forEach((batch, k) => {
    batch.forEach((v, j) => {
      assert.ok(near(pageBatches[k][j], v), `${where}: batch ${k + 1} value ${j + 1}: ${pageBatches[k][j]} vs ${v}`);
    });
  });
  const want = expected(c, pageBatches);
  want.rows.forEach((w, k) => {
    const { attrs, cells } = rows[k + 1];
    const at = `${where}, step ${k + 1}`;
    assert.deepEqual((attrs.x ?? '').split(',').map(Number), w.x, `${at}: the batch`);
    for (const [key, value] of [
      ['batchMean', w.mean],
      ['batchVar', w.var],
      ['batchVarUnbiased', w.varUnbiased],
      ['runningMean', w.runningMean],
      ['runningVar', w.runningVar],
    ] as const) {
      assert.ok(near(Number(attrs[key]), value), `${at}: data-${key} ${attrs[key]} vs ${value}`);
    }
    assert.equal(Number(attrs.tracked), w.tracked, `${at}: num_batches_tracked`);
    // what the reader sees: the batch, mean, variances, running statistics and count, in that order
    const shown = cells.map((text) => text.split(',').map(Number));
    assert.equal(shown.length, 7, `${at}: ${cells.join(' | ')}`);
    shown[0].forEach((v, j) => {
      assert.ok(closeToShown(v, w.x[j]), `${at}: batch value ${v} vs ${w.x[j]}`);
    });
    [w.mean, w.var, w.varUnbiased, w.runningMean, w.runningVar, w.tracked].forEach((value, j) => {
      assert.ok(closeToShown(shown[j + 1][0], value), `${at}: column ${j + 2} shows ${cells[j + 1]}, expected ${value}`);
    });
  });
  const evalRows = await page.$$eval('[data-eval-row]', (trs) =>
    trs.map((tr) => ({ attrs: Object.fromEntries(Object.entries((tr as HTMLElement).dataset)), cells: [...tr.querySelectorAll('.cell-value')].map((s) => Number(s.textContent)) })),
  );
  assert.equal(evalRows.length, BATCH);
  evalRows.forEach(({ attrs, cells }, j) => {
    const at = `${where}, eval row ${j + 1}`;
    assert.ok(near(Number(attrs.x), want.evalX[j]) && near(Number(attrs.trainY), want.trainY[j]) && near(Number(attrs.evalY), want.evalY[j]), `${at}: ${JSON.stringify(attrs)}`);
    assert.ok(closeToShown(cells[0], want.evalX[j]) && closeToShown(cells[1], want.trainY[j]) && closeToShown(cells[2], want.evalY[j]), `${at}: shows ${cells.join(', ')}`);
  });
  // train and eval differ while the running statistics lag the data's
  assert.ok(want.trainY.some((y, j) => Math.abs(y - want.evalY[j]) > 1e-3), `${where}: train and eval outputs differ`);
  assert.match((await page.textContent('[data-tracked-note]')) ?? '', new RegExp(`num_batches_tracked.*\\b${c.steps}\\b`));
}

describe('explainer training view (headless Chromium)', () => {
  const { newPage } = usePage();
  const base = { gamma: 1.5, beta: 0.2, eps: 1e-5 };

  for (const lang of ['en', 'zh'] as const) {
    it(`matches PyTorch's running statistics with momentum 0.1, the default (${lang})`, async () => {
      const page = await newPage(`?lang=${lang}`);
      await assertTraining(page, { ...base, momentum: 0.1, steps: 5, seed: 1 }, `default, ${lang}`);
      await page.close();
    });
  }

  it('matches the cumulative average for an empty momentum, and other values, from the URL', async () => {
    const page = await newPage('?momentum=&steps=4&seed=7&lang=zh');
    await assertTraining(page, { ...base, momentum: null, steps: 4, seed: 7 }, 'cumulative');
    assert.equal(await page.inputValue('#in-momentum'), '');
    await page.close();
    const other = await newPage('?gamma=0.7&beta=-0.3&eps=0.001&momentum=0.5&steps=3&seed=2');
    await assertTraining(other, { gamma: 0.7, beta: -0.3, eps: 1e-3, momentum: 0.5, steps: 3, seed: 2 }, 'momentum 0.5');
    await other.close();
  });

  it('recomputes when its fields change, keeps them in the URL, and reports a bad value', async () => {
    const page = await newPage('?lang=en', { viewport: { width: 390, height: 844 } });
    await page.fill('#in-momentum', '');
    await page.fill('#in-steps', '8');
    await page.fill('#in-seed', '11');
    assert.match(page.url(), /&momentum=&steps=8&seed=11&lang=en$/);
    await assertTraining(page, { ...base, momentum: null, steps: 8, seed: 11 }, 'edited');
    await page.fill('#in-momentum', '1.5');
    assert.equal(await page.getAttribute('#in-momentum', 'aria-invalid'), 'true');
    assert.match((await page.textContent('#problems')) ?? '', /momentum: '1.5' is not a number in \[0, 1\] or empty/);
    await page.fill('#in-momentum', '0.25');
    await assertTraining(page, { ...base, momentum: 0.25, steps: 8, seed: 11 }, 'momentum 0.25');
    await page.close();
  });
});
