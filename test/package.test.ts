// normkit as its users get it: the packed tarball installed in a new project (test/package-install.ts), then
// used from Node.js (ESM with the README's example, CommonJS), type-checked strictly by two TypeScript versions
// with a DOM lib and with a Node-only one, bundled by Vite into a page run in Chromium, loaded by a plain page
// through an import map, and its command run through npx. One install serves every check.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { build, preview } from 'vite';
import type { InlineConfig } from 'vite';
import { launchChromium } from './browser.ts';
import type { Installed } from './package-install.ts';
import { installPacked, root, run } from './package-install.ts';

/** The first fenced code block under a README heading. */
function readmeExample(heading: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README.md has no heading '${heading}'`);
  const block = /```\w*\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block !== null, `README.md has no code block under '${heading}'`);
  return block[1];
}

// x of shape (1, 2, 2, 2): channel 0 is 1..4 (mean 2.5, biased variance 1.25), channel 1 is 10..40 (25, 125)
const x = [1, 2, 3, 4, 10, 20, 30, 40];
const expected = x.map((v, i) => (i < 4 ? (v - 2.5) / Math.sqrt(1.25 + 1e-5) : (v - 25) / Math.sqrt(125 + 1e-5)));
const layerCall = `new BatchNorm2d(2).forward(tensor(Float32Array.from(${JSON.stringify(x)}), [1, 2, 2, 2]))`;

function assertClose(actual: readonly number[], what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((v, i) => {
    assert.ok(Math.abs(v - expected[i]) < 1e-6, `${what}: y[${i}] = ${v}, expected ${expected[i]}`);
  });
}

/** The numbers a script printed as its last line of JSON. */
function printed(stdout: string): number[] {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '[]') as number[];
}

// what a bundle of the library must not hold: the demo (MNIST), the benchmark, their libraries, GPU drivers
const foreign = ['mnist', 'resvg', 'vega', 'tfjs', '@tensorflow', 'onnxruntime', 'dram-bound', 'Ioffe', 'dawn', "'webgpu'"];

// without an icon the browser asks for /favicon.ico and logs its 404 as a console error
const noFavicon = '<link rel="icon" href="data:,">';

let installed: Installed;
let browser: Browser;

before(async () => {
  [installed, browser] = await Promise.all([installPacked(), launchChromium()]);
});

after(async () => {
  await browser.close();
  rmSync(installed.dir, { recursive: true, force: true });
});

/** Serves `config` with Vite's preview server, opens it in Chromium, and checks the page's numbers and that it logged no error. */
async function assertPage(config: InlineConfig, what: string): Promise<void> {
  const server = await preview({ ...config, preview: { port: 0, host: '127.0.0.1' } });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(server.resolvedUrls?.local[0] ?? '');
    const y = JSON.parse(await page.locator('body[data-y]').getAttribute('data-y', { timeout: 20_000 }) ?? '[]') as number[];
    await page.close();
    assert.deepEqual(errors, []);
    assertClose(y, what);
  } finally {
    await server.close();
  }
}

describe('the packed package, installed', { concurrency: true }, () => {
  it('imports from Node.js ESM (normkit/tfjs too, without tfjs installed), and the README example runs', async () => {
    const { app } = installed;
    writeFileSync(
      join(app, 'esm.mjs'),
      `import { BatchNorm2d, tensor } from 'normkit';\nimport { useNormkit } from 'normkit/tfjs';\nif (typeof useNormkit !== 'function') throw new Error('normkit/tfjs');\nconsole.log(JSON.stringify(Array.from(${layerCall}.data)));\n`,
    );
    const esm = await run(process.execPath, ['esm.mjs'], app);
    assert.equal(esm.status, 0, esm.stderr);
    assertClose(printed(esm.stdout), 'ESM');
    writeFileSync(join(app, 'readme.mjs'), readmeExample('### Node.js'));
    const example = await run(process.execPath, ['readme.mjs'], app);
    assert.equal(example.status, 0, example.stderr);
    assert.equal(example.stderr, '');
  });

  it('requires from CommonJS', async () => {
    const { app } = installed;
    writeFileSync(join(app, 'cjs.cjs'), `const { BatchNorm2d, tensor } = require('normkit');\nconst { startWasmThreads } = require('normkit/node');\nif (typeof startWasmThreads !== 'function') throw new Error('normkit/node');\nconsole.log(JSON.stringify(Array.from(${layerCall}.data)));\n`);
    const cjs = await run(process.execPath, ['cjs.cjs'], app);
    assert.equal(cjs.status, 0, cjs.stderr);
    assertClose(printed(cjs.stdout), 'CommonJS');
  });

  it('type-checks strictly with TypeScript 5.4 and the current one, with a DOM lib and with a Node-only lib', async () => {
    const { app } = installed;
    writeFileSync(
      join(app, 'consumer.ts'),
      `import { BatchNorm2d, LayerNorm, NormkitError, WebGpuNorm, tensor, wasmReady } from 'normkit';
import type { GpuTensor, StateDict, Tensor } from 'normkit';
import { createNodeWebGpu, startWasmThreads, startWebGpu } from 'normkit/node';

await wasmReady();
const bn = new BatchNorm2d(2, { momentum: null, dtype: 'float64' });
const y: Tensor = bn.forward(tensor(new Float64Array(8), [1, 2, 2, 2]));
const state: StateDict = bn.stateDict();
const norm = new LayerNorm([4]);
export async function gpu(): Promise<GpuTensor> {
  const engine: WebGpuNorm = await createNodeWebGpu();
  return engine.tensor(new Float32Array(4));
}
export const used = [y, state, norm, NormkitError, startWasmThreads, startWebGpu];
`,
    );
    const strict = { strict: true, noEmit: true, skipLibCheck: false, module: 'nodenext', target: 'es2022', exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true };
    const libs = { dom: { lib: ['es2022', 'dom'], types: [] }, node: { lib: ['es2022'], types: ['node'] } };
    const checks = Object.entries(libs).flatMap(([name, lib]) => {
      writeFileSync(join(app, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions: { ...strict, ...lib }, files: ['consumer.ts'] }));
      return ['typescript', 'typescript-5.4'].map(async (compiler) => {
        const tsc = await run(process.execPath, [join(root, 'node_modules', compiler, 'bin', 'tsc'), '-p', `tsconfig.${name}.json`], app);
        return { what: `${compiler}, ${name} lib`, ...tsc };
      });
    });
    for (const check of await Promise.all(checks)) assert.equal(check.status, 0, `${check.what}:\n${check.stdout}${check.stderr}`);
  });

  it('bundles with Vite into a page that runs in Chromium, without the demo, benchmark or GPU-driver code', async () => {
    const web = join(installed.app, 'web');
    mkdirSync(web);
    writeFileSync(join(web, 'index.html'), `<!doctype html><meta charset="utf-8">${noFavicon}<title>normkit in Vite</title><script type="module" src="./main.js"></script>\n`);
    writeFileSync(
      join(web, 'main.js'),
      `import { BatchNorm2d, tensor, wasmReady } from 'normkit';\nawait wasmReady();\ndocument.body.dataset.y = JSON.stringify(Array.from(${layerCall}.data));\n`,
    );
    const outDir = join(web, 'dist');
    const config = { root: web, configFile: false, logLevel: 'silent', build: { outDir, target: 'es2022' } } as const;
    await build(config);
    const bundle = readdirSync(join(outDir, 'assets'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(outDir, 'assets', f), 'utf8'))
      .join('\n');
    assert.match(bundle, /BatchNorm2d|Expected more than 1 value per channel/);
    for (const marker of foreign) assert.ok(!bundle.toLowerCase().includes(marker.toLowerCase()), `the bundle holds '${marker}'`);
    await assertPage(config, 'Vite page');
  });

  it('runs on a plain page with an import map, as the README shows', async () => {
    const { app } = installed;
    const importMap = readmeExample('### A plain page (import map)');
    const page = importMap.replace('<!doctype html>', `<!doctype html>${noFavicon}`).replace(/<script type="module">[\s\S]*<\/script>/, `<script type="module">import { BatchNorm2d, tensor, wasmReady } from 'normkit';\nawait wasmReady();\ndocument.body.dataset.y = JSON.stringify(Array.from(${layerCall}.data));</script>`);
    assert.match(page, /<script type="importmap">/);
    writeFileSync(join(app, 'index.html'), page);
    await assertPage({ root: app, configFile: false, logLevel: 'silent', build: { outDir: app } }, 'import-map page');
  });

  it('without the webgpu package, startWebGpu() rejects saying which package to install', async () => {
    const { app } = installed;
    writeFileSync(join(app, 'gpu.mjs'), "import { startWebGpu } from 'normkit/node';\nawait startWebGpu().then(() => console.log('started'), (error) => console.log(error.message));\n");
    const gpu = await run(process.execPath, ['gpu.mjs'], app);
    assert.equal(gpu.status, 0, gpu.stderr);
    assert.match(gpu.stdout, /the webgpu backend needs the optional dependency 'webgpu' \(Dawn for Node\.js\): npm install webgpu/);
  });

  it('npx normkit conformance runs the shipped fixtures, and a given file', async () => {
    const { app } = installed;
    // --no: never download a package named normkit; run the installed one
    const shipped = await run('npx', ['--no', 'normkit', 'conformance'], app);
    assert.equal(shipped.status, 0, shipped.stdout + shipped.stderr);
    assert.match(shipped.stdout, /: 554 passed, 0 failed, 0 skipped/);
    const fixtures = JSON.parse(readFileSync(join(app, 'node_modules', 'normkit', 'fixtures', 'pytorch-batchnorm.json'), 'utf8')) as { cases: unknown[] };
    writeFileSync(join(app, 'mine.json'), JSON.stringify({ ...fixtures, cases: fixtures.cases.slice(0, 1) }));
    const mine = await run('npx', ['--no', 'normkit', 'conformance', 'mine.json', '--json'], app);
    assert.equal(mine.status, 0, mine.stdout + mine.stderr);
    const report = JSON.parse(mine.stdout) as { files: string[]; passed: number; failed: number };
    assert.deepEqual(report.files, ['mine.json']);
    assert.ok(report.passed > 0 && report.failed === 0, mine.stdout);
  });

  it('npx normkit demo mnist trains and writes SVG and PNG charts', async () => {
    const { app } = installed;
    const demo = await run('npx', ['--no', 'normkit', 'demo', 'mnist', '--steps', '60', '--every', '30', '--out', 'demo'], app);
    assert.equal(demo.status, 0, demo.stdout + demo.stderr);
    for (const name of ['accuracy', 'percentiles-baseline', 'percentiles-batchnorm']) {
      const svg = readFileSync(join(app, 'demo', `${name}.svg`), 'utf8');
      assert.match(svg, /^<svg[\s\S]*training step[\s\S]*<\/svg>\n$/);
      assert.deepEqual([...readFileSync(join(app, 'demo', `${name}.png`)).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    }
    assert.match(readFileSync(join(app, 'demo', 'summary.md'), 'utf8'), /\| 60 \| 0\.\d{4} \| 0\.\d{4} \|/);
  });
});
