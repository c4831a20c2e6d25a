// Shared by the explainer's browser tests: Chromium and the built page on localhost for a describe block,
// what each graph node must show (from the reference), and what the page shows, attributes and text.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { normView } from '../src/core/layout.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { servePage } from '../web/server.ts';
import { launchChromium } from './browser.ts';

export interface ViewParams {
  x: number[];
  gamma: number;
  beta: number;
  eps: number;
  dy: number[];
}

export const defaults: ViewParams = { x: [1, 2], gamma: 1.5, beta: 0.2, eps: 1e-5, dy: [0.3, -0.1] };

/** The label a node's text starts with, as the page writes it (x₁, x̂₁, μ, …). */
export function nodeLabel(id: string): string {
  const sub = (k: string) => k.replace(/\d/g, (d) => '₀₁₂₃₄₅₆₇₈₉'[Number(d)]);
  const named: Record<string, string> = { mu: 'μ', var: 'σ²', gamma: 'γ', beta: 'β', L: 'L' };
  if (id in named) return named[id];
  const match = /^(x|xhat|y)(\d+)$/.exec(id);
  if (match === null) throw new Error(`unknown node ${id}`);
  return `${match[1] === 'xhat' ? 'x̂' : match[1]}${sub(match[2])}`;
}

/** What every node must show, [value, dL/dnode], from the reference implementation. */
export function expectedNodes(p: ViewParams): Map<string, [number, number]> {
  const n = p.x.length;
  const r = referenceNorm({ x: p.x, dy: p.dy, view: normView({ kind: 'batch' }, [n, 1], 'channels-first'), gamma: [p.gamma], beta: [p.beta], eps: p.eps });
  const nodes = new Map<string, [number, number]>([
    ['mu', [r.mu[0], r.dmu[0]]],
    ['var', [r.var[0], r.dvar[0]]],
    ['gamma', [p.gamma, r.dgamma[0]]],
    ['beta', [p.beta, r.dbeta[0]]],
    ['L', [r.y.reduce((s, y, i) => s + y * p.dy[i], 0), 1]],
  ]);
  for (let i = 0; i < n; i++) {
    nodes.set(`x${i + 1}`, [p.x[i], r.dx[i]]);
    nodes.set(`xhat${i + 1}`, [r.xhat[i], r.dxhat[i]]);
    nodes.set(`y${i + 1}`, [r.y[i], p.dy[i]]);
  }
  return nodes;
}

export interface ShownNode {
  value: number;
  grad: number;
  /** The text of the value line and of the gradient line(s), as rendered. */
  valueText: string;
  gradText: string;
}

export async function pageNodes(page: Page): Promise<Map<string, ShownNode>> {
  const rows = await page.$$eval('[data-node]', (els) =>
    els.map((e) => ({
      id: e.getAttribute('data-node') ?? '',
      value: Number(e.getAttribute('data-value')),
      grad: Number(e.getAttribute('data-grad')),
      valueText: e.querySelector('.node-value')?.textContent ?? '',
      gradText: e.querySelector('.node-grad')?.textContent ?? '',
    })),
  );
  return new Map(rows.map(({ id, ...shown }) => [id, shown]));
}

/** A number as the page prints it (5 significant digits) is within rounding of the true one. */
export function closeToShown(shown: number, truth: number): boolean {
  return Math.abs(shown - truth) <= 6e-4 * Math.abs(truth) + 1e-300;
}

/** The number after `prefix =` in a rendered line, which must start with the prefix. */
export function numberAfter(text: string, prefix: string, where: string): number {
  const flat = text.replace(/\s+/g, ' ').trim();
  assert.ok(flat.startsWith(`${prefix} =`), `${where}: '${flat}' should start with '${prefix} ='`);
  const value = Number(flat.slice(prefix.length + 2).trim());
  assert.ok(Number.isFinite(value), `${where}: no number in '${flat}'`);
  return value;
}

/** Every node's attributes (full precision) and its rendered text (value line, then gradient line) match. */
export function assertNodes(actual: Map<string, ShownNode>, expected: Map<string, [number, number]>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [id, [value, grad]] of expected) {
    const shown = actual.get(id)!;
    assert.ok(Math.abs(shown.value - value) <= 1e-12 * Math.max(1, Math.abs(value)), `${id} data-value ${shown.value} vs ${value}`);
    assert.ok(Math.abs(shown.grad - grad) <= 1e-12 * Math.max(1, Math.abs(grad)), `${id} data-grad ${shown.grad} vs ${grad}`);
    const label = nodeLabel(id);
    const valueShown = numberAfter(shown.valueText, label, `${id} value line`);
    const gradShown = numberAfter(shown.gradText, `∂L/∂${label}`, `${id} gradient line`);
    assert.ok(closeToShown(valueShown, value), `${id} shows value ${valueShown}, expected ${value}`);
    assert.ok(closeToShown(gradShown, grad), `${id} shows gradient ${gradShown}, expected ${grad}`);
  }
}

/** tsx compiles page.evaluate callbacks with esbuild's keepNames, which calls a __name helper the page lacks. */
export const KEEP_NAMES = 'globalThis.__name = (f) => f;';

export interface PageSession {
  newPage: (search: string, options?: BrowserContextOptions) => Promise<Page>;
  /** Every console message and page error, as 'type: text'. */
  consoleMessages: string[];
  browserVersion: () => string;
  browser: () => Browser;
}

/** For a describe block: Chromium and the built page served on localhost, started before its tests and closed after. */
export function usePage(options: { webgpu?: boolean } = {}): PageSession {
  let browser: Browser | null = null;
  let url = '';
  let close: () => Promise<void> = () => Promise.resolve();
  const consoleMessages: string[] = [];
  before(async () => {
    browser = await launchChromium(options);
    const served = await servePage(0);
    url = served.url;
    close = () => served.server.close();
  });
  after(async () => {
    await browser?.close();
    await close();
  });
  return {
    consoleMessages,
    browserVersion: () => browser?.version() ?? '',
    browser: () => {
      if (browser === null) throw new Error('the browser is not started');
      return browser;
    },
    newPage: async (search, contextOptions = {}) => {
      if (browser === null) throw new Error('the browser is not started');
      // each page in a context of its own (viewport, touch, locale); closing the browser closes them all
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOptions });
      await context.addInitScript(KEEP_NAMES);
      const page = await context.newPage();
      page.on('console', (m) => consoleMessages.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => consoleMessages.push(`pageerror: ${e.message}`));
      await page.goto(url + search);
      await page.waitForSelector('[data-node="L"]');
      return page;
    },
  };
}
