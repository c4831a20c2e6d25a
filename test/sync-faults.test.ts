// SyncBatchNorm when something goes wrong: a rank that never calls, throws or passes a wrong shape fails
// every other rank with an error naming it (in-process and over shared memory); a rank with 0 samples
// takes part; bad communicators, a second backward and a backward after normkit overwrote the input are
// refused; float32 on two values per channel matches BatchNorm1d.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NormkitError } from '../src/errors.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import type { Communicator } from '../src/nn/sync/communicator.ts';
import { inProcessGroup } from '../src/nn/sync/in-process.ts';
import { createSharedGroup, sharedMemoryCommunicator } from '../src/nn/sync/shared-memory.ts';
import { SyncBatchNorm } from '../src/nn/sync/sync-batchnorm.ts';
import type { Tensor } from '../src/tensor.ts';
import { Random, maxAbsDiff, randomTensor } from './helpers.ts';

const C = 3;
/** Each test ends in well under this; a hang fails the test instead of the run. */
const timeout = 10_000;

function rows(t: Tensor, from: number, to: number): Tensor {
  const per = t.data.length / t.shape[0];
  return { data: t.data.slice(from * per, to * per), shape: [to - from, ...t.shape.slice(1)] };
}

const isError = (code: string, text: RegExp) => (e: unknown) => e instanceof NormkitError && e.code === code && text.test(e.message);

describe('SyncBatchNorm faults', () => {
  it('in-process: a rank that never calls fails the others within timeoutMs, naming it', { timeout }, async () => {
    const comms = inProcessGroup(3, { timeoutMs: 150 });
    const layers = comms.map((comm) => new SyncBatchNorm(C, comm, { dtype: 'float64' }));
    const x = randomTensor(new Random(1), [2, C]);
    const started = Date.now();
    // rank 2 never calls
    const results = await Promise.allSettled([layers[0].forward(x), layers[1].forward(x)]);
    for (const r of results) assert.ok(r.status === 'rejected' && isError('backend', /rank 2 did not call within 150 ms/)(r.reason), String(r.status === 'rejected' ? r.reason : 'resolved'));
    assert.ok(Date.now() - started < 5000);
    // no half-updated state, and the group stays failed
    assert.equal(layers[0].numBatchesTracked, 0);
    await assert.rejects(layers[2].forward(x), /rank 2 did not call/);
    assert.throws(() => inProcessGroup(2, { timeoutMs: -1 }), (e: unknown) => e instanceof NormkitError && e.code === 'option');
  });

  it('in-process: a rank that throws in forward or backward fails the others at once, naming it; state unchanged', { timeout }, async () => {
    const random = new Random(2);
    const x = randomTensor(random, [4, C]);
    const comms = inProcessGroup(2);
    const layers = comms.map((comm) => new SyncBatchNorm(C, comm, { dtype: 'float64' }));
    // rank 1 passes an input with the wrong channel count
    const forward = await Promise.allSettled([layers[0].forward(x), layers[1].forward(randomTensor(random, [4, C + 1]))]);
    assert.ok(forward[0].status === 'rejected' && isError('backend', /rank 1 failed: SyncBatchNorm \(layer 0\):/)(forward[0].reason), String(forward[0].status === 'rejected' ? forward[0].reason : 'resolved'));
    assert.equal(forward[1].status, 'rejected');
    assert.equal(layers[0].numBatchesTracked, 0);
    // backward: rank 0 passes a wrong-shape dy after a good forward
    const again = inProcessGroup(2).map((comm) => new SyncBatchNorm(C, comm, { dtype: 'float64' }));
    await Promise.all(again.map((bn) => bn.forward(x)));
    const backward = await Promise.allSettled([again[0].backward(randomTensor(random, [3, C])), again[1].backward(randomTensor(random, [4, C]))]);
    assert.ok(backward[1].status === 'rejected' && isError('backend', /rank 0 failed: .*expected grad_output of shape \[4, 3\]/)(backward[1].reason));
    assert.deepEqual(Array.from(again[1].weight!.grad), [0, 0, 0]);
  });

  it('shared memory: a timed-out step names the absent rank, and no later call sums a stale slot', { timeout }, async () => {
    const group = createSharedGroup(2, 4);
    const rank0 = sharedMemoryCommunicator(group, 0, 100);
    const rank1 = sharedMemoryCommunicator(group, 1, 100);
    await assert.rejects(rank0.allReduce(Float64Array.of(1, 2)), isError('backend', /rank 1 did not arrive within 100 ms/));
    // rank 1 arrives late: it must fail, not add rank 0's stale slot to its values
    const late = Float64Array.of(10, 20);
    await assert.rejects(rank1.allReduce(late), /rank 1 did not arrive within 100 ms; the group is closed/);
    assert.deepEqual(Array.from(late), [10, 20]);
    await assert.rejects(rank0.allReduce(Float64Array.of(1, 2)), /the group is closed/);
    // an abort names the aborting rank at once
    const other = createSharedGroup(2, 4);
    sharedMemoryCommunicator(other, 1).abort?.('bad input');
    await assert.rejects(sharedMemoryCommunicator(other, 0).allReduce(new Float64Array(1)), /rank 1 failed mid-step/);
  });

  it('a rank with 0 samples takes part with zero statistics; the others match BatchNorm (worker threads: sync-batchnorm.test.ts)', { timeout }, async () => {
    const random = new Random(3);
    const x = randomTensor(random, [5, C, 2], 'float64', 1, 2);
    const dy = randomTensor(random, [5, C, 2]);
    const bn = new BatchNorm1d(C, { dtype: 'float64' });
    const y = bn.forward(x);
    const dx = bn.backward(dy);
    const bounds = [0, 0, 2, 5];
    const check = async (comms: Communicator[]): Promise<void> => {
      const layers = comms.map((comm) => new SyncBatchNorm(C, comm, { dtype: 'float64' }));
      const ys = await Promise.all(layers.map((l, r) => l.forward(rows(x, bounds[r], bounds[r + 1]))));
      const dxs = await Promise.all(layers.map((l, r) => l.backward(rows(dy, bounds[r], bounds[r + 1]))));
      assert.equal(ys[0].data.length, 0);
      assert.deepEqual(ys[0].shape, [0, C, 2]);
      for (const r of [1, 2]) {
        assert.ok(maxAbsDiff(ys[r].data, rows(y, bounds[r], bounds[r + 1]).data) < 1e-12);
        assert.ok(maxAbsDiff(dxs[r].data, rows(dx, bounds[r], bounds[r + 1]).data) < 1e-12);
      }
      for (const l of layers) assert.ok(maxAbsDiff(l.runningVar!, bn.runningVar!) < 1e-15);
      assert.deepEqual(Array.from(layers[0].weight!.grad), [0, 0, 0]);
    };
    await check(inProcessGroup(3, { timeoutMs: 2000 }));
  });

  it('refuses a communicator that does not satisfy the interface', () => {
    const allReduce = (): Promise<void> => Promise.resolve();
    const bad: unknown[] = [null, {}, 3, { worldSize: 2, rank: -1, allReduce }, { worldSize: 2, rank: 2, allReduce }, { worldSize: 1.5, rank: 0, allReduce }, { worldSize: 0, rank: 0, allReduce }, { worldSize: 2, rank: 0.5, allReduce }, { worldSize: 2, rank: 0 }, { worldSize: 2, rank: 0, allReduce, abort: 1 }];
    for (const comm of bad) {
      assert.throws(() => new SyncBatchNorm(C, comm as Communicator), (e: unknown) => e instanceof NormkitError && e.code === 'option', JSON.stringify(comm));
    }
    assert.throws(() => inProcessGroup(1e9), (e: unknown) => e instanceof NormkitError && e.code === 'option');
    assert.throws(() => createSharedGroup(1e5, 1e5), (e: unknown) => e instanceof NormkitError);
  });

  it('refuses a second backward through one forward, and a backward after normkit overwrote the input', { timeout }, async () => {
    const random = new Random(4);
    const x = randomTensor(random, [4, C]);
    const dy = randomTensor(random, [4, C]);
    const layers = inProcessGroup(2).map((comm) => new SyncBatchNorm(C, comm, { dtype: 'float64' }));
    await Promise.all(layers.map((bn) => bn.forward(x)));
    await Promise.all(layers.map((bn) => bn.backward(dy)));
    const grad = Array.from(layers[0].weight!.grad);
    const twice = await Promise.allSettled(layers.map((bn) => bn.backward(dy)));
    assert.ok(twice.every((r) => r.status === 'rejected' && r.reason instanceof NormkitError && /a second time/.test(r.reason.message)));
    assert.deepEqual(Array.from(layers[0].weight!.grad), grad);
    const y = inProcessGroup(2).map((comm) => new SyncBatchNorm(C, comm, { dtype: 'float64' }));
    const inputs = [randomTensor(random, [4, C]), randomTensor(random, [4, C])];
    await Promise.all(y.map((bn, r) => bn.forward(inputs[r])));
    // another layer's forward writes into rank 0's saved input
    new BatchNorm1d(C, { dtype: 'float64' }).forward(randomTensor(random, [4, C]), { out: inputs[0] });
    const after = await Promise.allSettled(y.map((bn) => bn.backward(dy)));
    assert.ok(after[0].status === 'rejected' && isError('modified', /modified by an inplace operation/)(after[0].reason));
    assert.ok(after[1].status === 'rejected' && isError('backend', /rank 0 failed/)(after[1].reason));
  });

  it('float32 on two values per channel: dx as BatchNorm1d computes it', { timeout }, async () => {
    const random = new Random(5);
    const x = randomTensor(random, [2, 4], 'float32', 3, 1);
    const dy = randomTensor(random, [2, 4], 'float32');
    const bn = new BatchNorm1d(4);
    bn.forward(x);
    const dx = bn.backward(dy);
    const layers = inProcessGroup(2).map((comm) => new SyncBatchNorm(4, comm));
    await Promise.all(layers.map((l, r) => l.forward(rows(x, r, r + 1))));
    const dxs = await Promise.all(layers.map((l, r) => l.backward(rows(dy, r, r + 1))));
    const scale = Math.max(...Array.from(dx.data, Math.abs));
    const got = [...dxs[0].data, ...dxs[1].data];
    assert.ok(maxAbsDiff(got, dx.data) <= 1e-6 * scale, `dx ${got.join(", ")} vs ${Array.from(dx.data).join(", ")}`);
  });
});
