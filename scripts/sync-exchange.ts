// SyncBatchNorm's sync cost per layer and step on this host: the forward all-gather and the backward
// all-reduce for C in {64, 256, 1024} channels, 2 and 4 ranks, over WebSocket (rank processes started
// by `normkit run`, loopback) and over a SharedArrayBuffer group (worker threads). Medians of 200 steps.
// Run: node --import tsx scripts/sync-exchange.ts
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createSharedGroup } from '../src/nn/sync/shared-memory.ts';

interface Row {
  world: number;
  C: number;
  forwardMs: number;
  backwardMs: number;
}

const rankScript = fileURLToPath(new URL('./sync-exchange-rank.ts', import.meta.url));
const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

function overWebSocket(world: number): Row[] {
  const run = spawnSync(process.execPath, ['--import', 'tsx', main, 'run', '--ranks', String(world), '--', process.execPath, '--import', 'tsx', rankScript], { encoding: 'utf8', timeout: 600_000 });
  if (run.status !== 0) throw new Error(`normkit run failed (${run.status}): ${run.stderr}`);
  return run.stdout.split('\n').filter((l) => l.startsWith('[rank 0] {')).map((l) => JSON.parse(l.slice('[rank 0] '.length)) as Row);
}

async function overSharedMemory(world: number): Promise<Row[]> {
  const group = createSharedGroup(world, world * (1 + 2 * 1024));
  const source = JSON.stringify(new URL('./sync-exchange-rank.ts', import.meta.url).href);
  const code = `import('tsx/esm/api').then(({ register }) => { register(); return import(${source}); })`;
  const rows: Row[] = [];
  await Promise.all(
    Array.from({ length: world }, (_, rank) => {
      const worker = new Worker(code, { eval: true, workerData: { group, rank } });
      worker.on('message', (line: string) => rows.push(JSON.parse(line) as Row));
      return new Promise((resolve, reject) => {
        worker.once('exit', resolve);
        worker.once('error', reject);
      });
    }),
  );
  return rows;
}

console.log('| ranks | C | WebSocket forward (ms) | WebSocket backward (ms) | shared memory forward (ms) | shared memory backward (ms) |');
console.log('|---|---|---|---|---|---|');
for (const world of [2, 4]) {
  const ws = overWebSocket(world);
  const shared = await overSharedMemory(world);
  for (const row of ws) {
    const s = shared.find((r) => r.C === row.C);
    const f = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(3));
    console.log(`| ${world} | ${row.C} | ${f(row.forwardMs)} | ${f(row.backwardMs)} | ${f(s?.forwardMs)} | ${f(s?.backwardMs)} |`);
  }
}
