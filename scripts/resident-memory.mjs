// Usage: npm run build && node scripts/resident-memory.mjs [sync|async] [C|A] [calls]
// 100,000 layer calls (forward + backward, shape C) with no dispose(): wasm memory and RSS along the way.
// mode 'sync': one synchronous loop; mode 'async': the loop yields to the event loop every 1,000 calls.
const root = new URL('../dist', import.meta.url).href;
const nn = await import(`${root}/index.js`);
const mode = process.argv[2] ?? 'sync';
const shape = process.argv[3] === 'A' ? [32, 64, 56, 56] : [8, 16, 8, 8];
const calls = Number(process.argv[4] ?? 100000);
const n = shape.reduce((a, b) => a * b, 1);
const bn = new nn.BatchNorm2d(shape[1]);
const x = nn.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i)), shape);
const dy = nn.tensor(Float32Array.from({ length: n }, (_, i) => Math.cos(i)), shape);
const mb = (b) => (b / 2 ** 20).toFixed(1);
const report = (i) => { const m = nn.wasmMemory(); console.log(`${mode} ${i} calls: wasm memory ${mb(m.size)} MiB, in blocks ${mb(m.used)} MiB, rss ${mb(process.memoryUsage().rss)} MiB, heap ${mb(process.memoryUsage().heapUsed)} MiB`); };
report(0);
let resident = 0;
const t0 = performance.now();
for (let i = 1; i <= calls; i++) {
  const y = bn.forward(x);
  const dx = bn.backward(dy);
  if (y.data.buffer instanceof SharedArrayBuffer) resident++;
  if (i % (calls / 5) === 0) report(i);
  if (mode === 'async' && i % 1000 === 0) await new Promise((r) => setImmediate(r));
}
console.log(`${mode}: ${resident} of ${calls} outputs resident; ${((performance.now() - t0) / calls * 1000).toFixed(1)} us per call`);
