// The benchmark's peers: PyTorch's subprocess protocol (a fake peer always; real torch when installed), the ONNX model, missing-peer advice.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { normalizedError } from '../src/conformance/compare.ts';
import { benchShape, makeData } from '../src/bench/harness.ts';
import { expected } from '../src/bench/expected.ts';
import { npmPeer, resolves } from '../src/bench/peers/available.ts';
import { batchNormModel } from '../src/bench/peers/onnx-model.ts';
import { findTorchPython, pytorchSystems } from '../src/bench/peers/pytorch.ts';
import type { ShapeSpec } from '../src/bench/types.ts';
import { shapeSpecs } from '../src/bench/types.ts';
import { strongest } from '../src/bench/probe.ts';

const specC = shapeSpecs.find((s) => s.name === 'C') as ShapeSpec;
const bandwidth = strongest([{ kernel: 'test copy', threads: 1, gbps: 10 }]);
const quiet = { reps: 2, budgetMs: 1000, tolerance: 1e-3, log: () => undefined };

/**
 * A fake peer in Node speaking the protocol: 'forward' answers the expected y from `golden`, 'inference' a wrong one,
 * and every sample takes 0.25 ms by its own clock; `mode` 'error' answers prepare with an error, 'crash' exits.
 */
function fakePeer(golden: string, mode: 'ok' | 'error' | 'crash'): string {
  const dir = mkdtempSync(join(tmpdir(), 'normkit-fake-torch-'));
  const script = join(dir, 'peer.mjs');
  writeFileSync(
    script,
    `import { copyFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
for await (const line of createInterface({ input: process.stdin })) {
  const req = JSON.parse(line);
  let reply = {};
  if (req.cmd === 'prepare') {
    if (${JSON.stringify(mode)} === 'crash') { process.stderr.write('Traceback: boom\\n'); process.exit(3); }
    reply = ${JSON.stringify(mode)} === 'error' ? { error: 'RuntimeError: no such norm' } : { ops: ['forward', 'inference', 'not-an-op'] };
  } else if (req.cmd === 'result') {
    if (req.op === 'forward') copyFileSync(${JSON.stringify(golden)}, req.out);
    else writeFileSync(req.out, Buffer.alloc(${specC.shape.reduce((p, d) => p * d, 1) * 4}));
  } else if (req.cmd === 'time') reply = { ms: 0.25 };
  process.stdout.write(JSON.stringify(reply) + '\\n');
}
`,
  );
  return script;
}

function goldenForward(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'normkit-golden-')), 'y.f32');
  writeFileSync(file, Float32Array.from(expected(makeData(specC)).forward));
  return file;
}

describe('PyTorch peer protocol (fake peer)', () => {
  it('times by the peer clock, checks results first, and drops unknown ops', async () => {
    const systems = pytorchSystems({ python: [process.execPath], script: fakePeer(goldenForward(), 'ok'), threads: [1, 1] });
    assert.equal(systems.length, 2, 'one system per distinct thread count and layout');
    const { rows, checks } = await benchShape(specC, systems, bandwidth, quiet);
    assert.deepEqual(
      checks.map((c) => [c.system, c.op, c.ok]),
      [
        ['pytorch', 'forward', true],
        ['pytorch', 'inference', false],
      ],
    );
    const timed = rows.filter((r) => r.system === 'pytorch');
    assert.deepEqual(
      timed.map((r) => [r.op, r.median_ms, r.min_ms]),
      [['forward', 0.25, 0.25]],
    );
  });

  it('an error answer or a dead peer is a "not run" line with its reason, not a crash', async () => {
    for (const [mode, reason] of [
      ['error', /PyTorch: RuntimeError: no such norm/],
      ['crash', /PyTorch peer exited: Traceback: boom/],
    ] as const) {
      const lines: string[] = [];
      const systems = pytorchSystems({ python: [process.execPath], script: fakePeer(goldenForward(), mode), threads: [1] });
      const { rows } = await benchShape(specC, systems, bandwidth, { ...quiet, log: (line) => lines.push(line) });
      assert.equal(rows.filter((r) => r.system === 'pytorch').length, 0);
      assert.match(lines.join('\n'), reason);
    }
  });

  it('without a Python with torch, says which interpreter failed and why', async () => {
    const found = await findTorchPython({ NORMKIT_TORCH_PYTHON: '/nonexistent/python' });
    assert.ok('reason' in found);
    assert.match(found.reason, /no Python with torch \(\/nonexistent\/python: .*ENOENT/);
  });
});

describe('PyTorch peer (real torch)', () => {
  it('BatchNorm2d on shape C matches the float64 result at 1 thread, both ops timed', async (t) => {
    const found = await findTorchPython();
    if ('reason' in found) {
      t.skip(`PyTorch rows not tested: ${found.reason}`);
      return;
    }
    const systems = pytorchSystems({ python: [found.python], threads: [1] }).filter((s) => s.layout === 'channels-first');
    const { rows, checks } = await benchShape(specC, systems, bandwidth, { ...quiet, reps: 1 });
    assert.deepEqual(
      checks.map((c) => [c.op, c.ok]),
      [
        ['forward', true],
        ['backward', true],
        ['forward+backward', true],
        ['inference', true],
      ],
      JSON.stringify(checks),
    );
    for (const check of checks) assert.ok(check.error < 1e-5, JSON.stringify(check));
    assert.equal(rows.filter((r) => r.system === 'pytorch' && r.median_ms > 0).length, 4);
  });
});

describe('ONNX model (onnx-proto)', () => {
  it('loads and runs in onnxruntime-node, inference and training mode, matching the float64 result', async (t) => {
    if (!resolves('onnxruntime-node')) {
      t.skip('onnxruntime-node is not installed');
      return;
    }
    const ort = await import('onnxruntime-node');
    const data = makeData(specC);
    const truth = expected(data);
    const c = specC.shape[1];
    const feeds = {
      X: new ort.Tensor('float32', data.x, [...specC.shape]),
      scale: new ort.Tensor('float32', data.weight, [c]),
      B: new ort.Tensor('float32', data.bias, [c]),
      input_mean: new ort.Tensor('float32', data.runningMean, [c]),
      input_var: new ort.Tensor('float32', data.runningVar, [c]),
    };
    for (const training of [false, true]) {
      const model = await batchNormModel(specC.shape, data.eps, training);
      const session = await ort.InferenceSession.create(model.bytes);
      assert.deepEqual(session.inputNames, model.inputs);
      assert.deepEqual(session.outputNames, model.outputs);
      const out = await session.run(feeds);
      const y = out.Y.data;
      assert.ok(y instanceof Float32Array);
      assert.ok(normalizedError(y, training ? truth.forward : truth.inference) < 1e-5);
      await session.release();
    }
  });
});

describe('missing peers', () => {
  it('name the one npm install that adds them', () => {
    assert.equal(resolves('@tensorflow/tfjs'), true);
    const peer = npmPeer('tfjs-backend-wasm', ['@tensorflow/tfjs', 'normkit-no-such-package'], () => {
      throw new Error('systems of a missing peer are never built');
    });
    assert.deepEqual(peer.systems, []);
    assert.equal(peer.missing, 'normkit-no-such-package not installed: npm install normkit-no-such-package');
  });
});
