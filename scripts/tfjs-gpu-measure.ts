/**
 * What BatchNorm costs inside a tfjs training step on tfjs's webgl backend in headless Chromium: the MNIST
 * conv net (src/demo/tfjs-convnet.ts) with and without its two batchNormalization layers, stock tfjs (the
 * most a faster BatchNorm could save). Median ms per model.fit step over `rounds` alternating runs of
 * `steps` steps, batch 32, 28x28 synthetic digits. Without a GPU, Chromium runs WebGL on SwiftShader (the
 * CPU): the figures then show the share of the step, not GPU speed.
 *
 *   node --import tsx scripts/tfjs-gpu-measure.ts [rounds=3] [steps=12]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { mnistConvNet } from '../src/demo/tfjs-convnet.ts';
import { launchChromium } from '../test/browser.ts';
import { serveStatic } from '../test/static-server.ts';

const rounds = Number(process.argv[2] ?? 3);
const steps = Number(process.argv[3] ?? 12);
const outDir = mkdtempSync(join(tmpdir(), 'normkit-tfjs-gpu-measure-'));
const page = fileURLToPath(new URL('../test/tfjs-gpu-page.ts', import.meta.url));
await build({
  configFile: false,
  logLevel: 'error',
  root: fileURLToPath(new URL('../test/', import.meta.url)),
  build: { outDir, emptyOutDir: false, minify: false, target: 'es2022', chunkSizeWarningLimit: 10_000, rolldownOptions: { input: page, output: { entryFileNames: 'page.js', format: 'es' } } },
});
const { url, close } = await serveStatic(outDir, 'page.js');
const browser = await launchChromium({ webgpu: true });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
try {
  console.log(`Chromium ${browser.version()}, ${rounds} rounds of ${steps} steps, batch 32, 28x28, conv net filters ${mnistConvNet.filters.join('/')}`);
  console.log('| tfjs backend | variant | ms per step (median) |');
  console.log('|---|---|---|');
  for (const backend of ['webgl'] as const) {
    const tab = await browser.newPage();
    await tab.goto(url);
    await tab.waitForFunction(() => window.tfjsGpu !== undefined, undefined, { timeout: 120_000 });
    if ((await tab.evaluate((b) => window.tfjsGpu!.start(b), backend)) === null) {
      console.log(`| ${backend} | (no adapter here) | |`);
      continue;
    }
    const variants = [
      { name: 'stock tfjs, with BatchNorm', normkit: false, batchNorm: true },
      { name: 'stock tfjs, without BatchNorm', normkit: false, batchNorm: false },
    ];
    const times = variants.map(() => [] as number[]);
    for (let round = 0; round < rounds; round++) {
      for (const [i, v] of variants.entries()) {
        await tab.evaluate((normkit) => (normkit ? window.tfjsGpu!.install() : window.tfjsGpu!.restore()), v.normkit);
        times[i].push(await tab.evaluate(([n, net]) => window.tfjsGpu!.fitTimed(n, 32, net), [steps, { ...mnistConvNet, batchNorm: v.batchNorm }] as const));
      }
    }
    variants.forEach((v, i) => {
      console.log(`| ${backend} | ${v.name} | ${median(times[i]).toFixed(1)} |`);
    });
    await tab.close();
  }
} finally {
  await browser.close();
  await close();
  rmSync(outDir, { recursive: true, force: true });
}
