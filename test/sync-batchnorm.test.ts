// SyncBatchNorm on 2 and 3 ranks with uneven shards equals BatchNorm on the concatenated batch, every tensor,
// in-process and on worker threads over shared memory.
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { describe, it } from 'node:test';
import type { Layout } from '../src/core/layout.ts';
import { toChannelsLast } from '../src/core/transpose.ts';
import { NormkitError } from '../src/errors.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import type { Communicator } from '../src/nn/sync/communicator.ts';
import { inProcessGroup } from '../src/nn/sync/in-process.ts';
import { createSharedGroup, sharedMemoryCommunicator } from '../src/nn/sync/shared-memory.ts';
import { SyncBatchNorm } from '../src/nn/sync/sync-batchnorm.ts';
import type { Tensor } from '../src/tensor.ts';
import { Random, maxAbsDiff, randomTensor } from './helpers.ts';
import type { RankJob, RankResult } from './sync-worker.ts';

const C = 3;
const state = { weight: [1.5, -0.5, 2], bias: [0.1, 0.2, 0.3], running_mean: [0.5, 0, -1], running_var: [2, 1, 0.5], num_batches_tracked: 2 };
const modes = [true, true, false];

interface Step {
  y: ArrayLike<number>;
  dx: ArrayLike<number>;
  dweight: ArrayLike<number>;
  dbias: ArrayLike<number>;
  state: Record<string, ArrayLike<number> | number>;
}

/** Steps of (x, dy) over the whole batch, in the layout. */
function batches(n: number, layout: Layout, seed: number): { x: Tensor; dy: Tensor }[] {
  const random = new Random(seed);
  return modes.map(() => {
    const cl = (t: Tensor): Tensor => (layout === 'channels-last' ? toChannelsLast(t.data, t.shape) : t);
    return { x: cl(randomTensor(random, [n, C, 2, 2], 'float64', 1, 2)), dy: cl(randomTensor(random, [n, C, 2, 2], 'float64')) };
  });
}

function full(data: { x: Tensor; dy: Tensor }[], layout: Layout): Step[] {
  const bn = new BatchNorm2d(C, { dtype: 'float64', layout });
  bn.loadStateDict(state);
  return data.map(({ x, dy }, k) => {
    bn.train(modes[k]);
    bn.zeroGrad();
    const y = bn.forward(x);
    const dx = bn.backward(dy);
    return { y: y.data, dx: dx.data, dweight: bn.weight!.grad.slice(), dbias: bn.bias!.grad.slice(), state: bn.stateDict() };
  });
}

function shard(t: Tensor, from: number, to: number): Tensor {
  const per = t.data.length / t.shape[0];
  return { data: t.data.slice(from * per, to * per), shape: [to - from, ...t.shape.slice(1)] };
}

async function rank(comm: Communicator, layout: Layout, data: { x: Tensor; dy: Tensor }[], from: number, to: number): Promise<Step[]> {
  const bn = new SyncBatchNorm(C, comm, { dtype: 'float64', layout });
  bn.loadStateDict(state);
  const steps: Step[] = [];
  for (const [k, { x, dy }] of data.entries()) {
    bn.train(modes[k]);
    bn.zeroGrad();
    const y = await bn.forward(shard(x, from, to));
    const dx = await bn.backward(shard(dy, from, to));
    steps.push({ y: y.data, dx: dx.data, dweight: bn.weight!.grad.slice(), dbias: bn.bias!.grad.slice(), state: bn.stateDict() });
  }
  return steps;
}

/** Every tensor of every rank against the full batch's: y and dx sliced, running statistics equal, gradients adding up. */
function compare(ranks: Step[][], truth: Step[], bounds: readonly number[]): void {
  truth.forEach((t, k) => {
    const per = t.y.length / bounds[bounds.length - 1];
    const dweight = new Float64Array(C);
    const dbias = new Float64Array(C);
    ranks.forEach((steps, r) => {
      const s = steps[k];
      const [from, to] = [bounds[r] * per, bounds[r + 1] * per];
      assert.ok(maxAbsDiff(s.y, Array.from(t.y).slice(from, to)) < 1e-12, `step ${k} rank ${r} y`);
      assert.ok(maxAbsDiff(s.dx, Array.from(t.dx).slice(from, to)) < 1e-12, `step ${k} rank ${r} dx`);
      for (const key of ['running_mean', 'running_var'] as const) {
        const mine = s.state[key] as ArrayLike<number>;
        assert.ok(maxAbsDiff(mine, t.state[key] as ArrayLike<number>) < 1e-14, `step ${k} rank ${r} ${key}`);
        // identical bits on every rank
        assert.deepEqual(Array.from(mine), Array.from(ranks[0][k].state[key] as ArrayLike<number>));
      }
      assert.equal(s.state.num_batches_tracked, t.state.num_batches_tracked);
      for (let c = 0; c < C; c++) {
        dweight[c] += s.dweight[c];
        dbias[c] += s.dbias[c];
      }
    });
    assert.ok(maxAbsDiff(dweight, t.dweight) < 1e-12, `step ${k} dweight`);
    assert.ok(maxAbsDiff(dbias, t.dbias) < 1e-12, `step ${k} dbias`);
  });
}

/** A rank's worker thread, running test/sync-worker.ts through tsx's loader. */
function startRank(job: RankJob): Promise<RankResult> {
  const source = JSON.stringify(new URL('./sync-worker.ts', import.meta.url).href);
  const code = `import('tsx/esm/api').then(({ register }) => { register(); return import(${source}); })`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: job });
    worker.once('message', (m: { ok: true; result: RankResult } | { ok: false; message: string }) => {
      void worker.terminate();
      if (m.ok) resolve(m.result);
      else reject(new Error(m.message));
    });
    worker.once('error', reject);
  });
}

const shardings: readonly (readonly number[])[] = [
  [0, 3, 7],
  [0, 2, 3, 7],
  [0, 0, 3, 7],
];

describe('SyncBatchNorm', () => {
  for (const bounds of shardings) {
    const worldSize = bounds.length - 1;
    const sizes = bounds.slice(1).map((b, r) => b - bounds[r]).join(' + ');
    for (const layout of ['channels-first', 'channels-last'] as const) {
      it(`in-process, ${worldSize} ranks (${sizes} samples), ${layout}: train, train, eval`, async () => {
        const data = batches(7, layout, worldSize);
        const comms = inProcessGroup(worldSize);
        const ranks = await Promise.all(comms.map((comm, r) => rank(comm, layout, data, bounds[r], bounds[r + 1])));
        compare(ranks, full(data, layout), bounds);
      });
    }
    it(`worker_threads over shared memory, ${worldSize} ranks (${sizes} samples)`, async () => {
      const layout = 'channels-first';
      const data = batches(7, layout, 10 + worldSize);
      const group = createSharedGroup(worldSize, worldSize * (1 + 2 * C));
      const results = await Promise.all(
        Array.from({ length: worldSize }, (_, r) =>
          startRank({
            group,
            rank: r,
            channels: C,
            layout,
            state,
            steps: data.map(({ x, dy }, k) => ({ train: modes[k], x: Float64Array.from(shard(x, bounds[r], bounds[r + 1]).data), dy: Float64Array.from(shard(dy, bounds[r], bounds[r + 1]).data), shape: [bounds[r + 1] - bounds[r], C, 2, 2] })),
          }),
        ),
      );
      compare(results.map((r) => r.steps), full(data, layout), bounds);
    });
  }

  it('one sample per rank is fine; one value per channel over all ranks is an error on every rank, state unchanged', async () => {
    const comms = inProcessGroup(2);
    const layers = comms.map((comm) => new SyncBatchNorm(2, comm, { dtype: 'float64' }));
    const x = randomTensor(new Random(1), [1, 2]);
    await Promise.all(layers.map((bn) => bn.forward(x)));
    assert.equal(layers[0].numBatchesTracked, 1);
    const solo = new SyncBatchNorm(2, inProcessGroup(1)[0], { dtype: 'float64' });
    await assert.rejects(solo.forward(x), (e: unknown) => e instanceof NormkitError && e.code === 'single-value');
    assert.equal(solo.numBatchesTracked, 0);
  });

  it('all-reduce: sums in rank order, the same bits on every rank; mismatched lengths are errors', async () => {
    const comms = inProcessGroup(3);
    const values = [[1e16, 1], [1, 2], [-1e16, 3]].map((v) => Float64Array.from(v));
    await Promise.all(comms.map((c, r) => c.allReduce(values[r])));
    // (1e16 + 1) + -1e16 = 0 in rank order (1 is lost to rounding), as every implementation computes it
    for (const v of values) assert.deepEqual(Array.from(v), [0, 6]);
    const bad = inProcessGroup(2);
    await assert.rejects(Promise.all([bad[0].allReduce(new Float64Array(2)), bad[1].allReduce(new Float64Array(3))]), /rank 1 called an all-reduce with 3 values, rank 0 an all-reduce with 2 values/);
    const group = createSharedGroup(1, 4);
    const one = sharedMemoryCommunicator(group, 0);
    const v = Float64Array.from([1, 2]);
    await one.allReduce(v);
    assert.deepEqual(Array.from(v), [1, 2]);
    await assert.rejects(one.allReduce(new Float64Array(5)), /exceed the group's capacity of 4/);
    assert.throws(() => sharedMemoryCommunicator(group, 1), /rank must be in \[0, 1\)/);
  });
});
