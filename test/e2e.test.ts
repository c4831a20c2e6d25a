// The explainer page in headless Chromium: its numbers are the reference's, shown on the lines they belong
// to, and it behaves as promised from the keyboard, by touch and in a browser without WebGPU.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { normView } from '../src/core/layout.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { conformanceBound, normalizedError } from '../src/conformance/compare.ts';
import type { FixtureTensor } from '../src/io/fixtures.ts';
import { assertNodes, defaults, expectedNodes, pageNodes, usePage } from './e2e-page.ts';
import { loadFixtures } from './helpers.ts';

describe('explainer page (headless Chromium)', () => {
  const { newPage, consoleMessages } = usePage();

  const open = (search = '', width = 1280, height = 800): Promise<Page> => newPage(search, { viewport: { width, height } });

  it("shows the reference's numbers, each on its own line: value beside the label, gradient beside ∂L/∂label", async () => {
    const page = await open();
    assertNodes(await pageNodes(page), expectedNodes(defaults));
    await page.close();
  });

  it('updates every node when an input is edited, and keeps the state in the URL', async () => {
    const page = await open('?lang=en');
    await page.fill('#in-x1', '-0.5');
    await page.fill('#in-gamma', '0.8');
    const edited = { ...defaults, x: [-0.5, 2], gamma: 0.8 };
    assertNodes(await pageNodes(page), expectedNodes(edited));
    assert.match(page.url(), /\?x=-0\.5,2&gamma=0\.8&beta=0\.2&eps=0\.00001&dy=0\.3,-0\.1&momentum=0\.1&steps=5&seed=1&lang=en$/);
    await page.click('#n-plus');
    assert.equal((await pageNodes(page)).size, 3 * 3 + 5);
    await page.fill('#in-eps', '-1');
    assert.equal(await page.getAttribute('#in-eps', 'aria-invalid'), 'true');
    assert.match((await page.textContent('#problems')) ?? '', /eps: '-1' is not a number > 0/);
    await page.close();
  });

  it('reproduces a view from its URL and reports malformed parameters', async () => {
    const p = { x: [0.5, -1, 2], gamma: 0.7, beta: -0.3, eps: 1e-3, dy: [1, 0.5, -2] };
    const page = await open('?x=0.5,-1,2&gamma=0.7&beta=-0.3&eps=1e-3&dy=1,0.5,-2');
    assertNodes(await pageNodes(page), expectedNodes(p));
    assert.equal(await page.isHidden('#problems'), true);
    await page.close();
    const bad = await open('?x=1,abc&eps=-1&dy=1,2,3&momentum=2&steps=99&lang=xx');
    const text = (await bad.textContent('#problems')) ?? '';
    assert.match(text, /x: '1,abc' is not a comma-separated list of numbers; using 1,2/);
    assert.match(text, /eps: '-1' is not a number > 0; using 0.00001/);
    assert.match(text, /dy: 3 values for 2 inputs/);
    assert.match(text, /momentum: '2' is not a number in \[0, 1\] or empty; using 0.1/);
    assert.match(text, /steps: '99' is not a whole number from 1 to 12; using 5/);
    assert.match(text, /lang: 'xx' is not en or zh; using en/);
    assertNodes(await pageNodes(bad), expectedNodes(defaults));
    await bad.close();
  });

  it("steps through the backward pass in the derivation's order with the arrow keys", async () => {
    const page = await open('?x=1,2,4');
    const visited: string[] = [];
    for (let k = 0; k < 6; k++) {
      await page.keyboard.press('ArrowRight');
      const step = (await page.getAttribute('#steps', 'data-step')) ?? '';
      const active = await page.$$eval('[data-node][data-active="true"]', (els) => els.map((e) => e.getAttribute('data-node')));
      visited.push(`${step}:${active.join(',')}`);
      assert.ok((await page.$$('#step-formula .katex')).length > 0, 'formula rendered with KaTeX');
      if (step === 'mu') assert.match((await page.textContent('#step-note')) ?? '', /zero up to rounding/);
    }
    assert.deepEqual(visited, ['beta:beta', 'gamma:gamma', 'xhat:xhat1,xhat2,xhat3', 'var:var', 'mu:mu', 'x:x1,x2,x3']);
    await page.keyboard.press('ArrowLeft');
    assert.equal(await page.getAttribute('#steps', 'data-step'), 'mu');
    await page.close();
  });

  it("shows an edge's local derivative on focus and on Tab, and dL/dx three ways that agree", async () => {
    const page = await open();
    await page.focus('[data-edge="x1->mu"]');
    assert.match((await page.textContent('#edge-info')) ?? '', /∂μ\/∂x₁ = 1\/N = 0.5/);
    await page.keyboard.press('Tab');
    const next = await page.evaluate(() => document.activeElement?.getAttribute('data-edge'));
    assert.equal(next, 'x1->var');
    assert.match((await page.textContent('#edge-info')) ?? '', /∂σ²\/∂x₁ = 2\(x₁ − μ\)\/N = -0.5/);
    const checks = await page.$$eval('[data-check] td[data-ref]', (cells) =>
      cells.map((td) => {
        const row = td.parentElement!;
        return [td.dataset.ref, row.querySelector<HTMLElement>('[data-closed]')?.dataset.closed, row.querySelector<HTMLElement>('[data-fd]')?.dataset.fd].map(Number);
      }),
    );
    assert.equal(checks.length, 2);
    for (const [ref, closed, fd] of checks) {
      assert.ok(Math.abs(ref - closed) < 1e-12);
      assert.ok(Math.abs(ref - fd) < 1e-6);
    }
    assert.equal(await page.getAttribute('[data-gradcheck]', 'data-gradcheck'), 'pass');
    assert.match((await page.textContent('#two-inputs')) ?? '', /0\.9999800006/);
    await page.close();
  });

  it('shows the derivative of a tapped edge on a touch screen', async () => {
    const page = await newPage('?lang=en', { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
    for (const [edge, shown] of [
      ['x1->var', /∂σ²\/∂x₁ = 2\(x₁ − μ\)\/N = -0.5/],
      ['y2->L', /∂L\/∂y₂ = dy₂ \(L = Σ dyᵢ·yᵢ\) = -0.1/],
    ] as const) {
      // a point of the edge where no other edge lies on top of it
      const point = await page.$eval(`[data-edge="${edge}"]`, (g) => {
        g.scrollIntoView({ block: 'center' });
        const path = g.querySelector<SVGPathElement>('.edge-line')!;
        const length = path.getTotalLength();
        for (let k = 1; k < 40; k++) {
          const local = path.getPointAtLength((length * k) / 40);
          const at = new DOMPoint(local.x, local.y).matrixTransform(path.getScreenCTM()!);
          if (document.elementFromPoint(at.x, at.y)?.closest('[data-edge]') === g) return { x: at.x, y: at.y };
        }
        return null;
      });
      assert.ok(point !== null, `${edge} is on top somewhere`);
      await page.touchscreen.tap(point.x, point.y);
      assert.match((await page.textContent('#edge-info')) ?? '', shown);
    }
    await page.close();
  });

  it("draws which elements each norm reduces over from the kernels' views", async () => {
    const page = await open();
    const members = async (name: string) => page.$$eval(`[data-family="${name}"] rect.member`, (r) => r.length);
    // N=3, C=6, H*W=4: BatchNorm's channel spans N*HW, LayerNorm's sample C*HW, InstanceNorm HW, GroupNorm (2 groups) 3*HW
    assert.deepEqual([await members('BatchNorm'), await members('LayerNorm'), await members('InstanceNorm'), await members('GroupNorm')], [12, 24, 4, 12]);
    await page.click('[data-family="BatchNorm"] rect[data-index="30"]');
    assert.equal(await page.getAttribute('[data-family="BatchNorm"] rect[data-index="6"]', 'class'), 'member');
    // from the keyboard: ↓ moves to the next sample (24 elements on), → to the next element; the step walk stays put
    await page.focus('[data-family="InstanceNorm"] svg');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.getAttribute('[data-family="InstanceNorm"] svg', 'data-selected'), String((30 + 24 + 1) % 72));
    assert.equal(await page.evaluate(() => document.activeElement?.closest('[data-family]')?.getAttribute('data-family')), 'InstanceNorm');
    assert.deepEqual(await page.$$eval('[data-family="InstanceNorm"] rect.member', (r) => r.map((e) => e.getAttribute('data-index'))), ['52', '53', '54', '55']);
    assert.equal(await page.getAttribute('#steps', 'data-step'), 'forward');
    await page.close();
  });

  it('runs the wasm backend on Web Worker threads over shared memory, matching the js kernels', async () => {
    const page = await open();
    await page.waitForSelector('#wasm-status[data-wasm-threads]');
    // plain JavaScript as text: the test's TypeScript transform would add helpers the page lacks
    const result = await page.evaluate<{ threads: number; isolated: boolean; worst: number }>(`(() => {
      const { BatchNorm2d, Random, wasmThreads } = window.normkit;
      const shape = [8, 16, 64, 80];
      const random = new Random(3);
      const x = { data: Float32Array.from(random.normals(8 * 16 * 64 * 80, 50, 0.1)), shape };
      const dy = { data: Float32Array.from(random.normals(x.data.length)), shape };
      function run(backend) {
        const bn = new BatchNorm2d(16, { backend });
        const y = bn.forward(x);
        return [y.data, bn.backward(dy).data];
      }
      const wasm = run('wasm');
      const js = run('js');
      let worst = 0;
      for (let k = 0; k < 2; k++) {
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < js[k].length; i++) {
          diff = Math.max(diff, Math.abs(wasm[k][i] - js[k][i]));
          scale = Math.max(scale, Math.abs(js[k][i]));
        }
        worst = Math.max(worst, diff / scale);
      }
      return { threads: wasmThreads(), isolated: crossOriginIsolated, worst };
    })()`);
    assert.equal(result.isolated, true);
    assert.ok(result.threads >= 2, `wasm ran on ${result.threads} thread(s)`);
    assert.ok(result.worst < 1e-6, `normalized difference ${result.worst}`);
    assert.match((await page.textContent('#wasm-status')) ?? '', new RegExp(`SIMD on ${result.threads} threads`));
    await page.close();
  });

  it('keeps the console quiet without WebGPU, and says in the page why the webgpu backend is not there', async () => {
    const page = await open('?x=1,2,3&lang=en');
    await page.keyboard.press('ArrowRight');
    await page.focus('[data-edge="x1->mu"]');
    await page.fill('#in-x1', '0.25');
    await page.fill('#in-momentum', '');
    await page.selectOption('#lang', 'zh');
    await page.selectOption('#lang', 'en');
    await page.waitForSelector('#wasm-status[data-wasm-threads]');
    assert.deepEqual(consoleMessages, [], 'the page logged nothing');
    assert.match((await page.textContent('#gpu-status')) ?? '', /Choose webgpu/);
    await page.selectOption('#backend', 'webgpu');
    await page.waitForSelector('#gpu-status[data-gpu="gpuNone"], #gpu-status[data-gpu="gpuNoAdapter"]');
    assert.match((await page.textContent('#gpu-status')) ?? '', /the js kernel computes the closed form/);
    assert.equal(await page.inputValue('#backend'), 'js');
    assert.equal(await page.getAttribute('table.checks', 'data-backend'), 'js');
    await page.close();
  });
});

describe('explainer page with WebGPU (headless Chromium --enable-unsafe-webgpu: SwiftShader where there is no GPU)', () => {
  const { newPage, consoleMessages } = usePage({ webgpu: true });

  /** The page once it has decided whether to offer webgpu; null (with the reason) where it has no adapter outside CI. */
  async function openWithGpu(search: string): Promise<Page | null> {
    const page = await newPage(search);
    const adapter = await page.evaluate('(async () => Boolean(navigator.gpu && (await navigator.gpu.requestAdapter())))()');
    if (adapter !== true) {
      // CI has SwiftShader: an adapter must exist there
      assert.equal(process.env.NORMKIT_REQUIRE_WEBGPU, undefined, 'no WebGPU adapter in headless Chromium');
      await page.close();
      return null;
    }
    await page.selectOption('#backend', 'webgpu');
    await page.waitForSelector('#gpu-status[data-gpu="on"]');
    return page;
  }

  it('offers the webgpu backend switch, and its float32 dL/dx matches the reference', async (t) => {
    const page = await openWithGpu('?x=0.5,-1,2&gamma=0.7&beta=-0.3&eps=1e-3&dy=1,0.5,-2');
    if (page === null) {
      t.skip('no WebGPU adapter in this Chromium');
      return;
    }
    assert.match((await page.textContent('#gpu-status')) ?? '', /webgpu on .+ \(float32\)/);
    await page.waitForSelector('table.checks[data-backend="webgpu"][data-ready="true"]');
    const closed = await page.$$eval('[data-closed]', (els) => els.map((e) => Number(e.getAttribute('data-closed'))));
    const p = { x: [0.5, -1, 2], gamma: 0.7, beta: -0.3, eps: 1e-3, dy: [1, 0.5, -2] };
    const ref = referenceNorm({ x: p.x, dy: p.dy, view: normView({ kind: 'batch' }, [3, 1], 'channels-first'), gamma: [p.gamma], beta: [p.beta], eps: p.eps });
    assert.equal(closed.length, 3);
    const scale = Math.max(...Array.from(ref.dx, Math.abs));
    closed.forEach((v, i) => {
      assert.ok(Math.abs(v - ref.dx[i]) <= 1e-6 * scale, `dx${i + 1}: ${v} vs ${ref.dx[i]}`);
    });
    assert.match((await page.textContent('table.checks thead')) ?? '', /closed form \(webgpu kernel on .+, float32\)/);
    // editing a value recomputes on the GPU
    await page.fill('#in-x1', '1.5');
    await page.waitForSelector('table.checks[data-backend="webgpu"][data-ready="true"]');
    await page.selectOption('#backend', 'js');
    await page.waitForSelector('table.checks[data-backend="js"]');
    await page.close();
  });

  it('runs a public fixture case (bn2d_large_offset) through the page on webgpu and conforms', async (t) => {
    const page = await openWithGpu('');
    if (page === null) {
      t.skip('no WebGPU adapter in this Chromium');
      return;
    }
    const c = loadFixtures('pytorch-batchnorm.json').cases.find((k) => k.name === 'bn2d_large_offset')!;
    const step = c.steps[0];
    const actual = await page.evaluate<Record<'output' | 'grad_input' | 'grad_weight' | 'grad_bias', number[]>>(`(async () => {
      const nk = window.normkit;
      const step = ${JSON.stringify({ input: step.input, grad_output: step.grad_output, weight: c.state.weight, bias: c.state.bias, eps: c.options.eps })};
      const kernels = nk.webgpuTypedKernels(await nk.WebGpuNorm.create());
      const view = nk.normView({ kind: 'batch' }, step.input.shape, 'channels-first');
      const x = Float32Array.from(step.input.data);
      const [weight, bias] = [Float32Array.from(step.weight), Float32Array.from(step.bias)];
      const groups = view.groups;
      const [mean, variance, rstd] = [new Float64Array(groups), new Float64Array(groups), new Float64Array(groups)];
      const y = new Float32Array(x.length);
      await kernels.forwardTrain(y, x, view, weight, bias, step.eps, mean, variance, rstd);
      const [dx, dweight, dbias] = [new Float32Array(x.length), new Float32Array(groups), new Float32Array(groups)];
      await kernels.backward(dx, dweight, dbias, Float32Array.from(step.grad_output.data), x, view, weight, mean, rstd, true);
      return { output: Array.from(y), grad_input: Array.from(dx), grad_weight: Array.from(dweight), grad_bias: Array.from(dbias) };
    })()`);
    const truth = step.expect_float64!;
    const torch = step.expect!;
    const values = (v: readonly number[] | FixtureTensor | undefined): readonly number[] => (v === undefined ? [] : 'data' in v ? v.data : v);
    for (const key of ['output', 'grad_input', 'grad_weight', 'grad_bias'] as const) {
      const error = normalizedError(actual[key], values(truth[key]));
      const bound = conformanceBound('float32', normalizedError(values(torch[key]), values(truth[key])));
      assert.ok(error <= bound, `${key}: ${error} > ${bound}`);
      // the hi/lo mean: far inside PyTorch's float32 error (2e-4 on output, 1e-3 on grad_weight)
      assert.ok(error < 1e-5, `${key}: ${error}`);
    }
    await page.close();
    assert.deepEqual(consoleMessages.filter((m) => m.startsWith('error') || m.startsWith('pageerror')), []);
  });
});
