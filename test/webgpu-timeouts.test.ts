// No stale replies on webgpu (issue 27): a call that times out is refused with a NormkitError, leaves the
// layer as it was, and its late reply is dropped instead of answering the next call (which got the
// earlier call's y and statistics before). And the GPU worker starts under Node flags a worker refuses.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NormkitError } from '../src/errors.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import { startWebGpu, stopWebGpu, workerExecArgv } from '../src/node/webgpu-threads.ts';
import { tensor } from '../src/tensor.ts';
import { Random, snapshot } from './helpers.ts';
import { useWebGpu } from './webgpu-setup.ts';

describe('webgpu: timeouts and worker flags', () => {
  it('the worker keeps loaders and drops process-wide flags', () => {
    assert.deepEqual(
      workerExecArgv(['--max-old-space-size=512', '--import', 'tsx', '--expose-gc', '--require', './x.cjs', '--stack-size', '900', '--input-type=module', '--conditions=dev', '--no-warnings']),
      ['--import', 'tsx', '--require', './x.cjs', '--conditions=dev', '--no-warnings'],
    );
  });

  let gpu = false;
  let reason = '';
  before(async () => {
    const setup = await useWebGpu();
    gpu = setup.ok;
    reason = setup.ok ? '' : setup.reason;
  });
  after(async () => {
    await stopWebGpu();
  });

  it('a timed-out call leaves the layer unchanged and its late reply answers no later call', async (t) => {
    if (!gpu) {
      t.skip(reason);
      return;
    }
    // a timeout a quarter of what a large call takes here (SwiftShader or a real GPU), so that call passes it;
    // small calls warmed up first (their pipelines made), so they take far less
    const x = tensor([1, 2, 3, 4, 5, 6, 7, 9], [4, 2]);
    const expected = Array.from(new BatchNorm1d(2, { backend: 'js' }).forward(x).data);
    const bn = new BatchNorm1d(2, { backend: 'webgpu' });
    bn.forward(x);
    const random = new Random(3);
    const big = { data: new Float32Array(2 ** 22).map(() => random.normal()), shape: [2 ** 19, 8] };
    const probe = new BatchNorm1d(8, { backend: 'webgpu' });
    probe.forward(big);
    const started = performance.now();
    probe.forward(big);
    const timeoutMs = Math.max(1, Math.floor((performance.now() - started) / 4));
    await startWebGpu({ timeoutMs });
    const slow = new BatchNorm1d(8, { backend: 'webgpu' });
    const before = snapshot(slow);
    assert.throws(
      () => slow.forward(big),
      (error: unknown) => error instanceof NormkitError && error.code === 'backend' && /did not answer within \d+ ms/.test(error.message),
    );
    assert.equal(snapshot(slow), before, 'a timed-out call changed the layer');
    // the same session, a generous timeout again: the late reply comes first and is dropped, each call gets its own
    await startWebGpu({ timeoutMs: 600_000 });
    const y = Array.from(bn.forward(x).data);
    assert.equal(y.length, expected.length);
    y.forEach((v, i) => {
      assert.ok(Math.abs(v - expected[i]) < 1e-5, `y[${i}] = ${v}, expected ${expected[i]}`);
    });
    const statsBefore = snapshot(probe);
    probe.forward(big);
    assert.notEqual(snapshot(probe), statsBefore, 'the large call after the timeout ran');
  });
});

describe('webgpu: the CLI under a Node flag a worker refuses', () => {
  it('conformance --backend webgpu runs with --max-old-space-size=512', async (t) => {
    const setup = await useWebGpu();
    if (!setup.ok) {
      t.skip(setup.reason);
      return;
    }
    const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
    const run = spawnSync(process.execPath, ['--max-old-space-size=512', cli, 'conformance', '--backend', 'webgpu'], { encoding: 'utf8', timeout: 300_000, env: { ...process.env } });
    const output = run.stdout + run.stderr;
    assert.doesNotMatch(output, /internal error|ERR_WORKER_INVALID_EXEC_ARGV/, output.slice(-2000));
    assert.equal(run.status, 0, output.slice(-2000));
  });
});
