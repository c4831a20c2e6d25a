// The explainer in English and Chinese: every visible string of ?lang=zh is Chinese (identifiers, formulas
// and names aside), both languages show the same numbers, formulas, data-* attributes and URL state, the
// browser's language picks the default, and axe-core finds no violations in either language.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Page } from 'playwright-core';
import { assertNodes, defaults, expectedNodes, pageNodes, usePage } from './e2e-page.ts';

const SEARCH = '?x=0.5,-1,2&gamma=0.7&beta=-0.3&eps=0.001&dy=1,0.5,-2&momentum=0.2&steps=4&seed=3';

interface Texts {
  /** Visible text nodes outside formulas (.katex), identifiers (code) and names ([translate=no]). */
  prose: string[];
  /** Every visible text node. */
  all: string[];
  /** data-* attributes of every element, in document order. */
  data: string[];
}

async function texts(page: Page): Promise<Texts> {
  return page.evaluate(() => {
    const prose: string[] = [];
    const all: string[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
      const text = (node.textContent ?? '').trim();
      const parent = node.parentElement;
      if (text === '' || parent === null || parent.closest('script, style, option, [hidden]') !== null) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      if (range.getClientRects().length === 0 || getComputedStyle(parent).visibility === 'hidden') continue;
      all.push(text);
      if (parent.closest('.katex, code, [translate="no"]') === null) prose.push(text);
    }
    const data = [...document.querySelectorAll('*')]
      .map((e) =>
        [...e.attributes]
          .filter((a) => a.name.startsWith('data-'))
          .map((a) => `${a.name}=${a.value}`)
          .join(' '),
      )
      .filter((s) => s !== '');
    return { prose, all, data };
  });
}

const numbers = (strings: readonly string[]) => strings.flatMap((s) => s.match(/-?\d+(?:\.\d+)?(?:e[-+]?\d+)?/g) ?? []).sort();

/** The TeX source of the formula at every step of the walk (KaTeX keeps it in an annotation). */
async function formulas(page: Page): Promise<string[]> {
  const seen: string[] = [];
  for (let k = 0; k <= 6; k++) {
    seen.push((await page.$$eval('#step-formula annotation', (els) => els.map((e) => e.textContent))).join('\n'));
    await page.keyboard.press('ArrowRight');
  }
  return seen;
}

describe('explainer page in English and Chinese (headless Chromium)', () => {
  const { newPage } = usePage();

  it('renders every visible string of ?lang=zh in Chinese, with the numbers, formulas, attributes and URL of ?lang=en', async () => {
    // phone width: the stacked tables repeat their column names beside every value
    const phone = { viewport: { width: 390, height: 844 } };
    const en = await newPage(`${SEARCH}&lang=en`, phone);
    const zh = await newPage(`${SEARCH}&lang=zh`, phone);
    for (const page of [en, zh]) await page.waitForSelector('#wasm-status[data-wasm-threads]');
    const [enTexts, zhTexts] = [await texts(en), await texts(zh)];
    const english = zhTexts.prose.filter((s) => /[A-Za-z]{2,}/.test(s));
    assert.deepEqual(english, [], 'English words left in the Chinese page');
    assert.ok(zhTexts.prose.filter((s) => /[\u4e00-\u9fff]/.test(s)).length > 50, 'Chinese text throughout');
    for (const term of ['均值', '方差', '归一化', '缩放', '平移', '计算图', '链式法则', '反向传播']) {
      assert.ok(zhTexts.all.some((s) => s.includes(term)), `the term ${term} appears`);
    }
    assert.ok(enTexts.prose.filter((s) => /[\u4e00-\u9fff]/.test(s)).length === 0, 'no Chinese in the English page');
    assert.deepEqual(numbers(zhTexts.all), numbers(enTexts.all));
    assert.deepEqual(zhTexts.data, enTexts.data);
    assert.equal(zh.url().replace('lang=zh', 'lang=en'), en.url());
    assert.deepEqual(await formulas(zh), await formulas(en));
    const p = { x: [0.5, -1, 2], gamma: 0.7, beta: -0.3, eps: 1e-3, dy: [1, 0.5, -2] };
    for (const page of [en, zh]) {
      assertNodes(await pageNodes(page), expectedNodes(p));
      await page.close();
    }
  });

  it("takes the browser's language when ?lang is absent, and switches by its control, keeping the URL in step", async () => {
    const chinese = await newPage('', { locale: 'zh-CN' });
    assert.equal(await chinese.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal(await chinese.textContent('#graph-title'), '计算图');
    assert.match(chinese.url(), /lang=zh$/);
    await chinese.selectOption('#lang', 'en');
    assert.equal(await chinese.textContent('#graph-title'), 'The computation graph');
    assert.match(chinese.url(), /lang=en$/);
    assertNodes(await pageNodes(chinese), expectedNodes(defaults));
    await chinese.close();
    const english = await newPage('', { locale: 'en-GB' });
    assert.equal(await english.getAttribute('html', 'lang'), 'en');
    await english.selectOption('#lang', 'zh');
    assert.match((await english.textContent('#step-title')) ?? '', /^前向/);
    assert.match((await english.textContent('#step-count')) ?? '', /前向传播/);
    await english.keyboard.press('ArrowRight');
    assert.match((await english.textContent('#step-count')) ?? '', /第 1 步，共 6 步/);
    await english.close();
  });

  // each language once, at a phone width (stacked tables, narrow graph) and at a desktop width
  for (const [lang, width] of [
    ['en', 390],
    ['zh', 1280],
  ] as const) {
    it(`has no axe-core violations (${lang}, ${width} px)`, async () => {
      const page = await newPage(`?x=1,2,3&lang=${lang}`, { viewport: { width, height: 900 } });
      await page.keyboard.press('ArrowRight');
      const { violations } = await new AxeBuilder({ page }).analyze();
      const summary = violations.map((v) => `${v.id} (${v.impact ?? ''}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
      assert.deepEqual(summary, []);
      await page.close();
    });
  }
});
