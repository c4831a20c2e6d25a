// The native probe against the in-process one (docs/bench-method.md): `rounds` alternations of
// scripts/native-probe.sh and src/bench/probe.ts (wasm pool on every core), every kernel's best GB/s over them all.
//   npm run build && node scripts/native-probe.mjs [rounds = 3]
import { availableParallelism } from 'node:os';
import { probeNative } from '../dist/bench/native-probe.js';
import { probeBandwidth } from '../dist/bench/probe.js';
import { startWasmThreads, stopWasmThreads } from '../dist/node/wasm-threads.js';

const rounds = Number(process.argv[2] ?? 3);
const best = new Map();
const keep = (source) => (k) => {
  const key = `${source}\t${k.kernel}, ${k.threads} thread${k.threads === 1 ? '' : 's'}`;
  best.set(key, Math.max(best.get(key) ?? 0, k.gbps));
};
for (let round = 0; round < rounds; round++) {
  const native = await probeNative(128, 10);
  if ('reason' in native) console.error(`native probe: not run (${native.reason})`);
  else native.kernels.forEach(keep('native'));
  await startWasmThreads(availableParallelism());
  probeBandwidth(10).kernels.forEach(keep('in-process'));
  await stopWasmThreads();
}
for (const [key, gbps] of best) console.log(`${key}\t${gbps.toFixed(1)} GB/s`);
