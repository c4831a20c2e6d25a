// normkit/tfjs on tfjs's webgpu backend in headless Chromium (SwiftShader's WebGPU adapter where there is no
// GPU): against normkit's float64 reference and stock tfjs, the layer with optimizer.minimize, restore(),
// and 100 model.fit steps of a small conv net with and without normkit. The webgl backend's fallback too.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Layout } from '../src/core/layout.ts';
import { normView } from '../src/core/layout.ts';
import { normalizedError } from '../src/conformance/compare.ts';
import { Random } from '../src/random.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { numel } from '../src/tensor.ts';
import { launchChromium } from './browser.ts';
import { serveStatic } from './static-server.ts';
import type { BatchNormCase, LayerCase } from './tfjs-gpu-page.ts';

const EPS = 1e-3;
/** float32 where normkit's kernels run, against the float64 reference */
const TIGHT = 1e-6;

const random = new Random(11);
const values = (n: number, mean = 0, std = 1) => Array.from(random.normals(n, mean, std), Math.fround);

function makeCase(shape: number[], layout: Layout, offset = 0.5): BatchNormCase {
  const n = numel(shape);
  const c = layout === 'channels-first' ? shape[1] : shape[shape.length - 1];
  return {
    shape,
    paramShape: layout === 'channels-first' ? shape.map((d, i) => (i === 1 ? c : 1)) : [c],
    x: values(n, offset, 2),
    dy: values(n),
    gamma: values(c, 1, 0.3),
    beta: values(c, 0, 0.3),
    mean: values(c, 0.5, 0.5),
    variance: values(c, 4, 1).map(Math.abs),
    eps: EPS,
  };
}

const layouts: readonly [Layout, number[]][] = [
  ['channels-last', [4, 5, 5, 3]],
  ['channels-first', [4, 3, 5, 5]],
];

/** The test page (tfjs-gpu-page.ts and its imports, tfjs included) bundled by vite. */
async function buildPage(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'normkit-tfjs-gpu-'));
  const { build } = await import('vite');
  await build({
    configFile: false,
    logLevel: 'error',
    root: fileURLToPath(new URL('.', import.meta.url)),
    build: {
      outDir,
      emptyOutDir: false,
      minify: false,
      target: 'es2022',
      chunkSizeWarningLimit: 10_000,
      rolldownOptions: { input: fileURLToPath(new URL('./tfjs-gpu-page.ts', import.meta.url)), output: { entryFileNames: 'page.js', format: 'es' } },
    },
  });
  return outDir;
}

describe("normkit/tfjs on tfjs's webgpu backend (headless Chromium --enable-unsafe-webgpu: SwiftShader where there is no GPU)", () => {
  let browser: Browser | undefined;
  let page: Page;
  let close: (() => Promise<void>) | undefined;
  let outDir: string;
  let started: { backend: string; served: string[] } | null = null;
  const errors: string[] = [];

  before(async () => {
    outDir = await buildPage();
    const served = await serveStatic(outDir, 'page.js');
    close = served.close;
    const launched = await launchChromium({ webgpu: true });
    browser = launched;
    page = await launched.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(served.url);
    await page.waitForFunction(() => window.tfjsGpu !== undefined, undefined, { timeout: 120_000 });
    started = await page.evaluate(() => window.tfjsGpu!.start('webgpu'));
    // CI has SwiftShader: the adapter must exist there
    if (started === null) assert.equal(process.env.NORMKIT_REQUIRE_WEBGPU, undefined, 'tfjs could not start its webgpu backend in headless Chromium');
  });
  after(async () => {
    await browser?.close();
    await close?.();
    rmSync(outDir, { recursive: true, force: true });
  });

  /** The page, or a skip with the reason where tfjs has no webgpu here (outside CI). */
  const gpuPage = (t: { skip(message: string): void }): Page | null => {
    if (started !== null) return page;
    t.skip('no WebGPU adapter in this Chromium');
    return null;
  };

  it('serves FusedBatchNorm and the training kernels on webgpu', (t) => {
    if (gpuPage(t) === null) return;
    assert.equal(started!.backend, 'webgpu');
    assert.ok(started!.served.includes('webgpu'), `served: ${started!.served.join(', ')}`);
  });

  for (const [layout, shape] of layouts) {
    it(`tf.batchNorm (inference), ${layout}: the float64 reference within 1e-6, and stock tfjs`, async (t) => {
      const p = gpuPage(t);
      if (p === null) return;
      const k = makeCase(shape, layout);
      const { normkit, stock } = await p.evaluate((c) => window.tfjsGpu!.batchNorm(c), k);
      const truth = referenceNorm({ x: k.x, view: normView({ kind: 'batch' }, shape, layout), gamma: k.gamma, beta: k.beta, eps: EPS, stats: { mu: k.mean, var: k.variance } }).y;
      assert.ok(normalizedError(normkit, truth) <= TIGHT, `normkit error ${normalizedError(normkit, truth)}`);
      assert.ok(normalizedError(stock, truth) < 1e-5, `stock error ${normalizedError(stock, truth)}`);
    });
  }

  for (const [layout, shape] of layouts) {
    it(`training (batchNormTraining, tf.grads), ${layout}: y, mean, variance, dx, dscale, doffset within 1e-6 of the reference`, async (t) => {
      const p = gpuPage(t);
      if (p === null) return;
      // offset 100: float32 moments lose digits there, float-float statistics do not
      const k = { ...makeCase(shape, layout, 100), axis: layout === 'channels-first' ? 1 : -1 };
      // (stock tfjs's own gradient of this path throws: its FusedBatchNorm gradient reshapes dscale unsummed)
      const normkit = await p.evaluate((c) => window.tfjsGpu!.training(c), k);
      const ref = referenceNorm({ x: k.x, dy: k.dy, view: normView({ kind: 'batch' }, shape, layout), gamma: k.gamma, beta: k.beta, eps: EPS });
      const truth = { y: ref.y, mean: ref.mu, variance: ref.var, dx: ref.dx, dscale: ref.dgamma, doffset: ref.dbeta };
      for (const [name, expected] of Object.entries(truth)) {
        const error = normalizedError(normkit[name as keyof typeof normkit], expected);
        assert.ok(error <= TIGHT, `${name}: normkit error ${error}`);
      }
    });
  }

  it('the batch statistics carry gradient: dx of sum(mean*a) + sum(variance*b)', async (t) => {
    const p = gpuPage(t);
    if (p === null) return;
    const shape = [6, 4];
    const x = values(24);
    const [a, b] = [values(4), values(4)];
    const dx = await p.evaluate((c) => window.tfjsGpu!.statisticsGradient(c), { shape, x, a, b });
    const mu = [0, 1, 2, 3].map((c) => x.filter((_, i) => i % 4 === c).reduce((s, v) => s + v, 0) / 6);
    const truth = x.map((v, i) => a[i % 4] / 6 + (b[i % 4] * 2 * (v - mu[i % 4])) / 6);
    assert.ok(normalizedError(dx, truth) < 1e-6, `error ${normalizedError(dx, truth)}`);
  });

  /** The float64 closed form of LayerCase's three SGD steps and its inference call. */
  function layerTruth(k: LayerCase, layout: Layout) {
    const view = normView({ kind: 'batch' }, k.shape, layout);
    let [gamma, beta, movingMean, movingVar] = [k.gamma, k.beta, k.mean, k.variance].map((a) => Float64Array.from(a));
    const outputs: Float64Array[] = [];
    for (let step = 0; step < 3; step++) {
      const ref = referenceNorm({ x: k.x, dy: k.dy, view, gamma: k.scale ? gamma : null, beta: k.center ? beta : null, eps: k.eps });
      outputs.push(ref.y);
      movingMean = movingMean.map((m, c) => m - (m - ref.mu[c]) * (1 - k.momentum));
      movingVar = movingVar.map((v, c) => v - (v - ref.var[c]) * (1 - k.momentum));
      gamma = gamma.map((g, c) => g - k.lr * ref.dgamma[c]);
      beta = beta.map((b, c) => b - k.lr * ref.dbeta[c]);
    }
    const inference = referenceNorm({ x: k.x, view, gamma: k.scale ? gamma : null, beta: k.center ? beta : null, eps: k.eps, stats: { mu: movingMean, var: movingVar } }).y;
    const weights = [...(k.scale ? [gamma] : []), ...(k.center ? [beta] : []), movingMean, movingVar];
    return { outputs, inference, weights };
  }

  for (const [layout, shape] of layouts) {
    it(`tf.layers.batchNormalization, ${layout}: training, moving statistics, optimizer.minimize and inference on normkit's kernels`, async (t) => {
      const p = gpuPage(t);
      if (p === null) return;
      const k: LayerCase = { ...makeCase(shape, layout), axis: layout === 'channels-first' ? 1 : -1, momentum: 0.9, lr: 0.1, scale: true, center: true };
      const truth = layerTruth(k, layout);
      const check = (ran: Awaited<ReturnType<NonNullable<Window['tfjsGpu']>['layerNormkitOnly']>>, bound: number, who: string) => {
        ran.outputs.forEach((y, step) => {
          assert.ok(normalizedError(y, truth.outputs[step]) <= bound, `${who} step ${step}: error ${normalizedError(y, truth.outputs[step])}`);
        });
        ran.weights.forEach((w, i) => {
          assert.ok(normalizedError(w, truth.weights[i]) <= bound, `${who} weight ${i}: error ${normalizedError(w, truth.weights[i])}`);
        });
        assert.ok(normalizedError(ran.inference, truth.inference) <= bound, `${who} inference: error ${normalizedError(ran.inference, truth.inference)}`);
      };
      if (layout === 'channels-first') {
        const ran = await p.evaluate((c) => window.tfjsGpu!.layerNormkitOnly(c), k);
        check(ran, TIGHT, 'normkit');
        assert.ok(ran.kernels.includes('NormkitBatchNormTrain') && ran.kernels.includes('NormkitBatchNormTrainGrad'), ran.kernels.join(', '));
        return;
      }
      const { normkit, stock } = await p.evaluate((c) => window.tfjsGpu!.layer(c), k);
      check(normkit, TIGHT, 'normkit');
      check(stock, 1e-5, 'stock tfjs');
      assert.ok(normkit.kernels.includes('NormkitBatchNormTrain') && normkit.kernels.includes('NormkitBatchNormTrainGrad'), normkit.kernels.join(', '));
      assert.ok(!stock.kernels.includes('NormkitBatchNormTrain'), 'stock ran normkit');
    });
  }

  it('tf.layers.batchNormalization with scale: false, center: false trains on normkit\'s kernels (tfjs#2868: stock tfjs throws there)', async (t) => {
    const p = gpuPage(t);
    if (p === null) return;
    const shape = [8, 3];
    const k: LayerCase = { ...makeCase(shape, 'channels-last'), axis: -1, momentum: 0.99, lr: 0.1, scale: false, center: false };
    const ran = await p.evaluate((c) => window.tfjsGpu!.layerNormkitOnly(c), k);
    const truth = layerTruth(k, 'channels-last');
    ran.outputs.forEach((y, step) => {
      assert.ok(normalizedError(y, truth.outputs[step]) <= TIGHT, `step ${step}`);
    });
    assert.ok(normalizedError(ran.weights[0], truth.weights[0]) <= TIGHT && normalizedError(ran.weights[1], truth.weights[1]) <= TIGHT, 'moving statistics');
  });

  it('model.fit: 100 steps of a conv net with and without normkit give the same loss curve to float32 rounding', async (t) => {
    const p = gpuPage(t);
    if (p === null) return;
    const { normkit, stock } = await p.evaluate(() => window.tfjsGpu!.fit(100, 4));
    assert.equal(normkit.losses.length, 100);
    assert.equal(stock.losses.length, 100);
    const gap = Math.max(...normkit.losses.map((l, i) => Math.abs(l - stock.losses[i]) / Math.max(1, Math.abs(stock.losses[i]))));
    console.log(`# conv net, 100 steps on webgpu (SwiftShader: no GPU timing): loss ${stock.losses[0].toFixed(4)} -> ${stock.losses[99].toFixed(4)}; largest gap ${gap.toExponential(2)}; ms/step normkit ${normkit.msPerStep.toFixed(1)}, stock ${stock.msPerStep.toFixed(1)}`);
    assert.ok(stock.losses[99] < 0.7 * stock.losses[0], `the net learns: ${stock.losses[0]} -> ${stock.losses[99]}`);
    assert.ok(gap < 1e-4, `largest relative gap between the curves ${gap}`);
  });

  it("on tfjs's webgl backend: tfjs's own kernels run, and normkit says so once", async () => {
    const webgl = await page.evaluate(() => window.tfjsGpu!.start('webgl'));
    assert.notEqual(webgl, null, "tfjs's webgl backend did not start");
    const shape = [8, 3];
    const k: LayerCase = { ...makeCase(shape, 'channels-last'), axis: -1, momentum: 0.9, lr: 0.1, scale: true, center: true };
    const before = (await page.evaluate(() => window.tfjsGpu!.notices())).length;
    for (let round = 0; round < 2; round++) {
      const ran = await page.evaluate((c) => window.tfjsGpu!.layerNormkitOnly(c), k);
      assert.ok(!ran.kernels.includes('NormkitBatchNormTrain'), ran.kernels.join(', '));
      const truth = layerTruth(k, 'channels-last');
      assert.ok(normalizedError(ran.outputs[0], truth.outputs[0]) < 1e-5, "tfjs's own training output");
    }
    const said = (await page.evaluate(() => window.tfjsGpu!.notices())).slice(before);
    assert.equal(said.filter((m) => m.includes("webgl backend keeps tfjs's own BatchNorm kernels")).length, 1, said.join('\n'));
    if (started !== null) await page.evaluate(() => window.tfjsGpu!.start('webgpu'));
  });

  it('restore() puts stock tfjs back on every backend', async (t) => {
    const p = gpuPage(t);
    if (p === null) return;
    const restored = await p.evaluate(() => window.tfjsGpu!.restored());
    assert.deepEqual(restored.served, []);
    assert.deepEqual(restored.trainKernel, []);
    assert.deepEqual(restored.fusedIsStock, [true, true]);
    await p.evaluate(() => window.tfjsGpu!.install());
    assert.deepEqual(errors, []);
  });
});
