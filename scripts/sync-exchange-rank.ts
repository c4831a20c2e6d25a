// One rank of scripts/sync-exchange.ts: times SyncBatchNorm's two exchanges per layer and step — forward,
// the all-gather of (count, mean, M2) per channel (1 + 2C values); backward, the all-reduce of sum(dy) and
// sum(dy*xhat) (2C values) — over a WebSocket group (from the environment `normkit run` sets) or, with
// SHARED set, over a SharedArrayBuffer group in a worker thread. Rank 0 prints one JSON line per C.
import { parentPort, workerData } from 'node:worker_threads';
import { median } from '../src/bench/timing.ts';
import type { Communicator } from '../src/nn/sync/communicator.ts';
import type { SharedGroup } from '../src/nn/sync/shared-memory.ts';
import { sharedMemoryCommunicator } from '../src/nn/sync/shared-memory.ts';
import { joinWebSocketGroup } from '../src/node/websocket-group.ts';

const channels = [64, 256, 1024];
const reps = 200;

async function measure(communicator: Communicator, print: (line: string) => void): Promise<void> {
  const world = communicator.worldSize;
  for (const C of channels) {
    const forward: number[] = [];
    const backward: number[] = [];
    const stats = new Float64Array(1 + 2 * C).fill(1);
    const sums = new Float64Array(2 * C).fill(1);
    // without an all-gather the forward is an all-reduce of every rank's slot, as SyncBatchNorm does it
    const slots = new Float64Array(world * (1 + 2 * C));
    for (let rep = -20; rep < reps; rep++) {
      let start = performance.now();
      if (communicator.allGather !== undefined) await communicator.allGather(stats, { layer: 0, what: 'forward statistics' });
      else await communicator.allReduce(slots, { layer: 0, what: 'forward statistics' });
      const f = performance.now() - start;
      start = performance.now();
      await communicator.allReduce(sums, { layer: 0, what: 'backward sums' });
      const b = performance.now() - start;
      if (rep >= 0) {
        forward.push(f);
        backward.push(b);
      }
    }
    if (communicator.rank === 0) print(JSON.stringify({ world, C, forwardMs: median(forward), backwardMs: median(backward) }));
  }
}

if (parentPort !== null) {
  const port = parentPort;
  const job = workerData as { group: SharedGroup; rank: number };
  await measure(sharedMemoryCommunicator(job.group, job.rank, 60_000), (line) => {
    port.postMessage(line);
  });
} else {
  const group = await joinWebSocketGroup({ timeoutMs: 60_000 });
  await measure(group.communicator, (line) => {
    console.log(line);
  });
  await group.close();
}
