// A browser page as a rank: one Node.js rank (hosting the coordinator) and one Chromium page rank joined
// through the page's standard WebSocket, SyncBatchNorm on each's shard equal to BatchNorm on the
// concatenated batch, running statistics bit-identical.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import { SyncBatchNorm } from '../src/nn/sync/sync-batchnorm.ts';
import { joinWebSocketGroup } from '../src/node/websocket-group.ts';
import type { WebSocketGroup } from '../src/node/websocket-group.ts';
import { launchChromium } from './browser.ts';
import { Random, maxAbsDiff, randomTensor } from './helpers.ts';

let browser: Browser | null = null;
let group: WebSocketGroup | null = null;
let bundle = '';

before(async () => {
  browser = await launchChromium();
  // the page's normkit: SyncBatchNorm and the standard-WebSocket rank, bundled for the browser
  const root = fileURLToPath(new URL('..', import.meta.url));
  const out = await build({
    stdin: { contents: "export { SyncBatchNorm } from './src/nn/sync/sync-batchnorm.ts'; export { connectWebSocketRank } from './src/nn/sync/websocket-browser.ts';", resolveDir: root, loader: 'ts' },
    bundle: true,
    format: 'iife',
    globalName: 'normkit',
    platform: 'browser',
    write: false,
    logLevel: 'error',
  });
  bundle = out.outputFiles[0].text;
});

after(async () => {
  await group?.close();
  await browser?.close();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => { resolve(port); });
    });
  });
}

interface PageResult {
  y: number[];
  dx: number[];
  runningMean: number[];
  runningVar: number[];
}

describe('SyncBatchNorm with a browser rank', () => {
  it('one Node.js rank and one Chromium page rank match BatchNorm on the concatenated batch', { timeout: 120_000 }, async () => {
    assert.ok(browser !== null);
    const C = 3;
    const random = new Random(11);
    const x = randomTensor(random, [5, C, 2], 'float64', 2, 3);
    const dy = randomTensor(random, [5, C, 2]);
    const bn = new BatchNorm1d(C, { dtype: 'float64' });
    const y = bn.forward(x);
    const dx = bn.backward(dy);
    const split = 2 * C * 2;
    const port = await freePort();
    const token = 'browser-rank-token';
    const page = await browser.newPage();
    await page.addScriptTag({ content: bundle });
    const joining = joinWebSocketGroup({ rank: 0, worldSize: 2, port, token, timeoutMs: 60_000 });
    const pageRank = page.evaluate(
      async ({ port, token, x, dy, shape, C }): Promise<PageResult> => {
        interface Layer {
          forward(t: { data: Float64Array; shape: number[] }): Promise<{ data: Float64Array }>;
          backward(t: { data: Float64Array; shape: number[] }): Promise<{ data: Float64Array }>;
          runningMean: Float64Array;
          runningVar: Float64Array;
        }
        const lib = Reflect.get(globalThis, 'normkit') as { connectWebSocketRank(url: string, o: object): Promise<{ close(): void }>; SyncBatchNorm: new (c: number, comm: object, o: object) => Layer };
        const comm = await lib.connectWebSocketRank(`ws://127.0.0.1:${port}`, { rank: 1, worldSize: 2, token, timeoutMs: 60_000 });
        const layer = new lib.SyncBatchNorm(C, comm, { dtype: 'float64', backend: 'js' });
        const out = await layer.forward({ data: Float64Array.from(x), shape });
        const grad = await layer.backward({ data: Float64Array.from(dy), shape });
        comm.close();
        return { y: Array.from(out.data), dx: Array.from(grad.data), runningMean: Array.from(layer.runningMean), runningVar: Array.from(layer.runningVar) };
      },
      { port, token, x: Array.from(x.data.slice(split)), dy: Array.from(dy.data.slice(split)), shape: [3, C, 2], C },
    );
    group = await joining;
    const layer = new SyncBatchNorm(C, group.communicator, { dtype: 'float64' });
    const mine = await layer.forward({ data: x.data.slice(0, split), shape: [2, C, 2] });
    const mineDx = await layer.backward({ data: dy.data.slice(0, split), shape: [2, C, 2] });
    const theirs = await pageRank;
    await page.close();
    assert.ok(maxAbsDiff([...mine.data, ...theirs.y], y.data) < 1e-12);
    assert.ok(maxAbsDiff([...mineDx.data, ...theirs.dx], dx.data) < 1e-12);
    assert.ok(maxAbsDiff(theirs.runningVar, bn.runningVar!) < 1e-14);
    // the same bits on both ranks
    assert.deepEqual(theirs.runningMean, Array.from(layer.runningMean!));
    assert.deepEqual(theirs.runningVar, Array.from(layer.runningVar!));
  });
});
