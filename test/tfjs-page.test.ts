// The tfjs GPU demo page (web/tfjs.html, built by `npm run build`, served as `npm start` serves it) in headless
// Chromium: it loads the MNIST digits, trains the conv net with and without normkit, and shows both runs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { servePage } from '../web/server.ts';
import { launchChromium } from './browser.ts';
import { KEEP_NAMES } from './e2e-page.ts';

describe('tfjs GPU demo page (headless Chromium --enable-unsafe-webgpu: SwiftShader where there is no GPU; trained on webgl)', () => {
  let browser: Browser | undefined;
  let url = '';
  let close: () => Promise<void> = () => Promise.resolve();
  before(async () => {
    browser = await launchChromium({ webgpu: true });
    const served = await servePage(0);
    url = served.url;
    close = () => served.server.close();
  });
  after(async () => {
    await browser?.close();
    await close();
  });

  it('trains the conv net on MNIST with normkit and without: two runs from the same start', async () => {
    const context = await browser!.newContext();
    await context.addInitScript(KEEP_NAMES);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}tfjs.html`);
    await page.waitForSelector('#status:text-matches("^ready")', { timeout: 120_000 });
    // CI has SwiftShader's WebGPU adapter: the page must pick webgpu there
    if (process.env.NORMKIT_REQUIRE_WEBGPU !== undefined) assert.equal(await page.inputValue('#backend'), 'webgpu');
    // trained here on webgl: on SwiftShader a 28x28 batch of 32 takes minutes per step on webgpu (normkit on
    // webgpu is tested in tfjs-gpu.test.ts); the page's switch works the same on both
    const backend = 'webgl';
    await page.selectOption('#backend', backend);
    await page.fill('#steps', '3');
    for (const [k, normkit] of [[1, true], [2, false]] as const) {
      await page.setChecked('#use-normkit', normkit);
      await page.click('#train');
      await page.waitForSelector(`#status[data-runs="${k}"]`, { timeout: 300_000 });
    }
    const rows = await page.$$eval('#runs tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)));
    assert.equal(rows.length, 2, JSON.stringify(rows));
    const [withNormkit, stock] = rows;
    assert.deepEqual([withNormkit[0], withNormkit[1], stock[1]], [backend, 'on', 'off']);
    assert.equal(withNormkit[2], '3');
    // the same seed: the first losses agree to the 4 decimals shown (3 steps are too few to ask that the loss falls)
    assert.equal(withNormkit[4], stock[4]);
    for (const row of rows) assert.ok([4, 5, 6].every((i) => Number.isFinite(Number.parseFloat(row[i] ?? ''))), JSON.stringify(row));
    assert.equal(await page.locator('#chart polyline').count(), 2);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
