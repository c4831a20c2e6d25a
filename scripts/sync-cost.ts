// SyncBatchNorm's own cost against BatchNorm's, one training step (forward + backward), float32 on the
// default backend: one rank (which runs BatchNorm, as PyTorch does), and the local work of a rank of a
// larger group (statistics, backward sums and dx through the kernels) with a communicator that answers at
// once, so the exchange costs nothing and what remains is compute. Interleaved rounds, medians.
// Run: node --import tsx scripts/sync-cost.ts [reps]
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import type { CollectiveTag, Communicator } from '../src/nn/sync/communicator.ts';
import { inProcessGroup } from '../src/nn/sync/in-process.ts';
import { SyncBatchNorm } from '../src/nn/sync/sync-batchnorm.ts';
import { median } from '../src/bench/timing.ts';
import { defaultBackend } from '../src/kernels/index.ts';

const reps = Number(process.argv[2] ?? 30);

/** Rank 0 of `worldSize` whose collectives return at once: all-gather repeats this rank's part, all-reduce keeps its values. */
function instantCommunicator(worldSize: number): Communicator {
  return {
    worldSize,
    rank: 0,
    allReduce: (_values: Float64Array, _tag?: CollectiveTag) => Promise.resolve(),
    allGather: (values: Float64Array) => Promise.resolve(Array.from({ length: worldSize }, () => values)),
  };
}

function randomData(n: number): Float32Array {
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 43758.5453 % 1;
  return data;
}

async function time(step: () => unknown): Promise<number> {
  const start = performance.now();
  await step();
  return performance.now() - start;
}

for (const [label, shape] of [['(256, 1024)', [256, 1024]], ['A (32, 64, 56, 56)', [32, 64, 56, 56]]] as const) {
  const C = shape[1];
  const n = shape.reduce((p, d) => p * d, 1);
  const x = { data: randomData(n), shape: [...shape] };
  const dy = { data: randomData(n), shape: [...shape] };
  const bn = shape.length === 2 ? new BatchNorm1d(C) : new BatchNorm2d(C);
  const one = new SyncBatchNorm(C, inProcessGroup(1)[0]);
  const local = new SyncBatchNorm(C, instantCommunicator(2));
  const rows: Record<string, number[]> = { BatchNorm: [], 'SyncBatchNorm, 1 rank': [], 'SyncBatchNorm local work of a rank (instant exchange)': [] };
  for (let round = 0; round <= reps; round++) {
    const t = [
      await time(() => {
        bn.forward(x);
        bn.backward(dy);
      }),
      await time(async () => {
        await one.forward(x);
        await one.backward(dy);
      }),
      await time(async () => {
        await local.forward(x);
        await local.backward(dy);
      }),
    ];
    // round 0 warms up
    if (round > 0) Object.values(rows).forEach((r, i) => r.push(t[i]));
  }
  const base = median(rows.BatchNorm);
  console.log(`${label}, float32, backend ${defaultBackend()}, ${reps} interleaved rounds (median ms, ratio to BatchNorm):`);
  for (const [name, values] of Object.entries(rows)) console.log(`  ${name.padEnd(52)} ${median(values).toFixed(3).padStart(8)} ms  ${(median(values) / base).toFixed(2)}x`);
}
