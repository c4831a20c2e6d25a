/**
 * `normkit bench --browser`: bundles page.ts with vite, serves it cross-origin isolated on
 * 127.0.0.1, and runs it in headless Chromium (playwright-core) on several page loads; first two
 * loads check whether tfjs's threaded wasm build really runs more than one thread.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { CheckResult } from '../harness.js';
import type { Row } from '../types.js';
import type { PageRequest, PageResult, ThreadProbe } from './protocol.js';

export interface BrowserBenchOptions extends Omit<PageRequest, 'tfjsWasmThreads'> {
  readonly loads: number;
  readonly log: (line: string) => void;
}

export interface BrowserBenchResult {
  /** Per page load, its rows. */
  readonly loads: readonly (readonly Row[])[];
  readonly checks: readonly CheckResult[];
  /** tfjs-wasm asked for 1 thread, then for `threads`, each on its own page load. */
  readonly tfjsThreads: readonly ThreadProbe[];
  /** Dedicated workers the page had after each probe (tfjs's pthread pool; normkit starts none there). */
  readonly tfjsWorkers: readonly number[];
  readonly browser: string;
}

/** The packages this needs beyond the library, with the command that installs them. */
export const browserPeers = ['vite', 'playwright-core', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'];

const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
const types: Readonly<Record<string, string>> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.map': 'application/json' };
const html = '<!doctype html><meta charset="utf-8"><title>normkit bench</title><script type="module" src="/page.js"></script>';

/** The page bundle (page.ts and its imports, tfjs included) in a temporary folder. */
async function buildPage(): Promise<string> {
  const here = dirname(fileURLToPath(import.meta.url));
  const entry = ['page.js', 'page.ts'].map((name) => join(here, name)).find((path) => existsSync(path));
  if (entry === undefined) throw new Error(`the benchmark page is missing beside ${here}`);
  const outDir = mkdtempSync(join(tmpdir(), 'normkit-bench-page-'));
  const { build } = await import('vite');
  await build({
    configFile: false,
    logLevel: 'error',
    root: here,
    build: {
      outDir,
      emptyOutDir: false,
      minify: false,
      target: 'es2022',
      chunkSizeWarningLimit: 10_000,
      rolldownOptions: { input: entry, output: { entryFileNames: 'page.js', format: 'es' } },
    },
  });
  return outDir;
}

/** Serves the bundle and tfjs-backend-wasm's binaries (/tfjs-wasm/) with COOP/COEP, so the page gets SharedArrayBuffer. */
function serve(outDir: string): Promise<{ server: Server; url: string }> {
  const require = createRequire(import.meta.url);
  const tfjsWasm = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const [root, rest] = path.startsWith('/tfjs-wasm/') ? [tfjsWasm, path.slice('/tfjs-wasm/'.length)] : [outDir, path.slice(1)];
    const file = resolve(root, rest);
    if (path === '/favicon.ico') {
      response.writeHead(204, isolation).end();
    } else if (path === '/') {
      response.writeHead(200, { ...isolation, 'Content-Type': types['.html'] }).end(html);
    } else if (file.startsWith(root + sep) && existsSync(file)) {
      response.writeHead(200, { ...isolation, 'Content-Type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
    } else {
      response.writeHead(404, isolation).end();
    }
  });
  return new Promise((done) => {
    server.listen(0, '127.0.0.1', () => {
      done({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` });
    });
  });
}

async function launch(webgpu: boolean): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`Chromium is missing at ${executablePath}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  const gpu = webgpu ? ['--enable-unsafe-webgpu'] : ['--disable-gpu'];
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', ...gpu] });
}

/**
 * A fresh page load, its errors passed to `log`, with the benchmark's entry points ready; `cores`: the
 * navigator.hardwareConcurrency the page sees (tfjs-wasm caps its threads at half of it).
 */
async function load(browser: Browser, url: string, log: (line: string) => void, cores?: number): Promise<Page> {
  const page = await browser.newPage();
  if (cores !== undefined) {
    await page.addInitScript((n) => {
      Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => n });
    }, cores);
  }
  page.on('pageerror', (error) => {
    log(`  page error: ${error.message}`);
  });
  page.on('console', (message) => {
    if (message.type() === 'error') log(`  page console: ${message.text()}`);
  });
  await page.goto(url);
  await page.waitForFunction(() => window.normkitBench !== undefined, undefined, { timeout: 60_000 });
  return page;
}

export async function runBrowserBench(options: BrowserBenchOptions): Promise<BrowserBenchResult> {
  const { log } = options;
  log('bundling the benchmark page (vite) ...');
  const outDir = await buildPage();
  const { server, url } = await serve(outDir);
  const browser = await launch(options.webgpu);
  try {
    log(`Chromium ${browser.version()} (headless), page ${url}`);
    const tfjsThreads: ThreadProbe[] = [];
    const tfjsWorkers: number[] = [];
    if (options.peers) {
      // asked for 1 thread, for all, and for all with the page told of twice the cores (tfjs-wasm's cap is half of them)
      const probes = [{ threads: 1 }, { threads: options.threads }, { threads: options.threads, cores: 2 * options.threads }];
      for (const { threads, cores } of probes) {
        const page = await load(browser, url, log, cores);
        const probe = await page.evaluate((n) => window.normkitBench?.probeTfjsThreads(n), threads);
        if (probe === undefined) throw new Error('the benchmark page did not start');
        tfjsThreads.push({ ...probe, ...(cores !== undefined && { cores }) });
        tfjsWorkers.push(page.workers().length);
        await page.close();
      }
    }
    const loads: Row[][] = [];
    const checks: CheckResult[] = [];
    const { shapes, reps, budgetMs, threads, peers, webgpu, systems } = options;
    const request: PageRequest = { shapes, reps, budgetMs, threads, peers, webgpu, systems, tfjsWasmThreads: threads };
    for (let i = 0; i < options.loads; i++) {
      log(`page load ${i + 1} of ${options.loads} ...`);
      const page = await load(browser, url, log);
      const result: PageResult | undefined = await page.evaluate((r) => window.normkitBench?.run(r), request);
      await page.close();
      if (result === undefined) throw new Error('the benchmark page did not start');
      for (const line of result.log) log(`  ${line}`);
      loads.push([...result.rows]);
      if (i === 0) checks.push(...result.checks);
    }
    return { loads, checks, tfjsThreads, tfjsWorkers, browser: browser.version() };
  } finally {
    await browser.close();
    server.close();
    rmSync(outDir, { recursive: true, force: true });
  }
}
