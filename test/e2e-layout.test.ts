// The explainer at phone, tablet and desktop widths: nothing wider than the viewport, every graph node
// inside the graph and clear of the others, node text of 12 px or more, and the page's top (down to the
// derivation's formulas) as the committed screenshots show it (docs/explainer-<width>.png;
// NORMKIT_UPDATE_SCREENSHOTS=1 writes them anew).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { fontFingerprint } from './browser.ts';
import { diffPngs } from './screenshots.ts';
import { usePage } from './e2e-page.ts';

const WIDTHS = [320, 390, 768, 1280, 1920] as const;
const docs = fileURLToPath(new URL('../docs/', import.meta.url));
const baselineInfo = join(docs, 'explainer-screenshots.json');
const update = process.env.NORMKIT_UPDATE_SCREENSHOTS === '1';
/** Anti-aliasing noise per channel, and the share of pixels allowed past it (see the README). */
const CHANNEL_TOLERANCE = 24;
const PIXEL_BUDGET = 5e-5;

/** '156' of '156.0.8078.129'. */
function majorVersion(version: string): string {
  return version.split('.')[0] ?? version;
}

interface Layout {
  scrollWidth: number;
  viewport: number;
  /** Elements reaching past the viewport where no ancestor clips them. */
  wide: string[];
  nodes: { id: string; box: [number, number, number, number]; textInside: boolean }[];
  area: [number, number, number, number];
  smallestText: number;
}

async function measure(page: Page): Promise<Layout> {
  return page.evaluate(() => {
    const viewport = document.documentElement.clientWidth;
    const wide: string[] = [];
    for (const element of document.body.querySelectorAll('*')) {
      const r = element.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      let [left, right] = [r.left, r.right];
      for (let a = element.parentElement; a !== null; a = a.parentElement) {
        const overflow = getComputedStyle(a).overflowX;
        if (overflow === 'hidden' || overflow === 'clip') {
          const ar = a.getBoundingClientRect();
          [left, right] = [Math.max(left, ar.left), Math.min(right, ar.right)];
        }
      }
      if (right > viewport + 0.5 || left < -0.5) wide.push(`${element.tagName.toLowerCase()}#${element.id}.${element.getAttribute('class') ?? ''} [${Math.round(left)}, ${Math.round(right)}]`);
    }
    const box = (r: DOMRect): [number, number, number, number] => [r.left, r.top, r.right, r.bottom];
    const svg = document.querySelector<SVGSVGElement>('svg.graph')!;
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    let smallestText = Infinity;
    const nodes = [...document.querySelectorAll<SVGGElement>('[data-node]')].map((g) => {
      const rect = g.querySelector('rect')!.getBoundingClientRect();
      let textInside = true;
      for (const text of g.querySelectorAll('text')) {
        smallestText = Math.min(smallestText, parseFloat(getComputedStyle(text).fontSize) * scale);
        const t = text.getBoundingClientRect();
        textInside &&= t.left >= rect.left && t.right <= rect.right && t.top >= rect.top && t.bottom <= rect.bottom;
      }
      return { id: g.dataset.node ?? '', box: box(rect), textInside };
    });
    return { scrollWidth: document.documentElement.scrollWidth, viewport, wide, nodes, area: box(document.getElementById('graph')!.getBoundingClientRect()), smallestText };
  });
}

function assertLayout(layout: Layout, where: string): void {
  assert.ok(layout.scrollWidth <= layout.viewport, `${where}: the page is ${layout.scrollWidth}px wide in a ${layout.viewport}px viewport`);
  assert.deepEqual(layout.wide, [], `${where}: elements wider than the viewport`);
  const [al, at, ar, ab] = layout.area;
  for (const { id, box, textInside } of layout.nodes) {
    const [l, t, r, b] = box;
    assert.ok(l >= al && r <= ar && t >= at && b <= ab && l >= 0 && r <= layout.viewport, `${where}: node ${id} [${box.map(Math.round).join(', ')}] outside the graph [${layout.area.map(Math.round).join(', ')}]`);
    assert.ok(textInside, `${where}: node ${id}'s text spills out of its box`);
  }
  for (const [i, a] of layout.nodes.entries()) {
    for (const b of layout.nodes.slice(i + 1)) {
      const overlap = Math.min(a.box[2], b.box[2]) - Math.max(a.box[0], b.box[0]) > 0 && Math.min(a.box[3], b.box[3]) - Math.max(a.box[1], b.box[1]) > 0;
      assert.ok(!overlap, `${where}: nodes ${a.id} and ${b.id} overlap`);
    }
  }
  assert.ok(layout.smallestText >= 12, `${where}: node text is ${layout.smallestText}px`);
}

describe('explainer page layout at phone, tablet and desktop widths (headless Chromium)', () => {
  const session = usePage();
  const shots = new Map<number, Buffer>();

  for (const width of WIDTHS) {
    it(`fits ${width} px: no overflow, nodes inside the graph and apart, text ≥ 12 px`, async () => {
      const page = await session.newPage('?lang=en', { viewport: { width, height: 900 } });
      await page.evaluate(() => document.fonts.ready);
      assertLayout(await measure(page), `${width}px, 2 inputs`);
      await page.waitForSelector('#wasm-status[data-wasm-threads]');
      // the page down to the walk through the derivation: header, inputs, graph and the forward formulas
      const height = await page.$eval('#steps', (e) => Math.ceil(e.getBoundingClientRect().bottom + window.scrollY + 8));
      shots.set(width, await page.screenshot({ fullPage: true, clip: { x: 0, y: 0, width, height }, animations: 'disabled', caret: 'hide' }));
      await page.close();
    });
  }

  it('keeps 8 inputs\' nodes apart and inside the graph, text ≥ 12 px, and the Chinese page within the viewport, from 1920 down to 320 px (steps of 40)', async () => {
    // the most nodes (8 inputs), in Chinese
    const page = await session.newPage('?x=1,2,3,4,5,6,7,9&dy=0.3,-0.1,0.2,-0.4,0.3,-0.1,0.2,-0.4&lang=zh', { viewport: { width: 1920, height: 900 } });
    await page.evaluate(() => document.fonts.ready);
    // narrowing: a graph not laid out again for its new width would stick out
    for (let width = 1920; width >= 320; width -= 40) {
      await page.setViewportSize({ width, height: 900 });
      // the graph is laid out again before the next frame is drawn (ResizeObserver)
      await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
      assertLayout(await measure(page), `${width}px, 8 inputs, Chinese`);
    }
    await page.close();
  });

  for (const width of WIDTHS) {
    it(`looks as the committed screenshot docs/explainer-${width}.png`, (t) => {
      const shot = shots.get(width);
      assert.ok(shot !== undefined, 'the layout test took the screenshot');
      const file = join(docs, `explainer-${width}.png`);
      const here = { chromium: session.browserVersion(), fonts: fontFingerprint() };
      if (update) {
        writeFileSync(file, shot);
        writeFileSync(baselineInfo, `${JSON.stringify({ ...here, widths: WIDTHS }, null, 2)}\n`);
        return;
      }
      const recorded = existsSync(baselineInfo) ? (JSON.parse(readFileSync(baselineInfo, 'utf8')) as { chromium: string; fonts: string }) : { chromium: 'none', fonts: 'none' };
      // baselines hold across a Chromium patch update (hinting and anti-aliasing stay within the budget); another
      // major version or font set rasterizes differently, and a pixel comparison would only measure that
      if (majorVersion(recorded.chromium) !== majorVersion(here.chromium) || recorded.fonts !== here.fonts) {
        t.skip(`baselines taken with Chromium ${recorded.chromium} and fonts ${recorded.fonts}; here Chromium ${here.chromium}, fonts ${here.fonts} (NORMKIT_UPDATE_SCREENSHOTS=1 retakes them)`);
        return;
      }
      return diffPngs(session.browser(), shot, readFileSync(file), CHANNEL_TOLERANCE).then((diff) => {
        const out = join(tmpdir(), `normkit-explainer-${width}.png`);
        const within = diff.size === diff.baselineSize && diff.differing <= PIXEL_BUDGET * diff.total;
        if (!within) writeFileSync(out, shot);
        t.diagnostic(`${width}px: ${diff.differing} of ${diff.total} pixels differ by more than ${CHANNEL_TOLERANCE}`);
        assert.ok(within, `${width}px: ${diff.size} vs baseline ${diff.baselineSize}, ${diff.differing} pixels differ (budget ${Math.floor(PIXEL_BUDGET * diff.total)}); this run's screenshot: ${out}`);
      });
    });
  }
});
