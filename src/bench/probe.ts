/**
 * The memory bandwidth this process gets, as strong as JavaScript and wasm get it, over 128 MB: copy (read +
 * write) and write-only fill, in wasm on one thread and on every thread of the pool and as typed-array
 * methods (glibc's memmove and memset, non-temporal stores at this size); read-only as memcmp (Node's
 * Buffer.compare), one thread. The best sample of each (a sample can only be slowed by the machine, never sped
 * up); the strongest kernel is the roofline. wasm has no read-only kernel here that is not bound by its
 * arithmetic (the column sums ran at a third of memcmp). src/bench/native-probe.ts measures the same kernels
 * in native code, on every thread too, where a C compiler exists.
 */
import { freeWasmTensor, runWasmJobs, wasmPool, wasmTensor } from '../kernels/wasm/backend.js';
import type { Job } from '../kernels/wasm/pool.js';
import { splitRange } from '../kernels/wasm/pool.js';

/** One probe kernel's best sample: GB/s of the bytes it must move (copy: read + write; read-only: read; fill: written). */
export interface ProbeKernel {
  readonly kernel: string;
  readonly threads: number;
  readonly gbps: number;
}

export interface Bandwidth {
  readonly kernels: readonly ProbeKernel[];
  /** The strongest kernel's GB/s, and which kernel that was. */
  readonly best: number;
  readonly source: string;
  /** The GPU's buffer-to-buffer copy (webgpu), where an adapter exists. */
  readonly gpu?: number;
}

export function describeKernel(k: ProbeKernel): string {
  return `${k.kernel}, ${k.threads} thread${k.threads === 1 ? '' : 's'}`;
}

/** The strongest of the kernels (best and source); NaN where there are none. */
export function strongest(kernels: readonly ProbeKernel[]): Bandwidth {
  const top = kernels.reduce<ProbeKernel | undefined>((a, k) => (a === undefined || k.gbps > a.gbps ? k : a), undefined);
  return { kernels, best: top?.gbps ?? Number.NaN, source: top === undefined ? 'no probe' : describeKernel(top) };
}

const BYTES = 128 * 1024 * 1024;

/** The best of `reps` samples (after one untimed call) as GB/s of `bytes` moved. */
function bestGbps(fn: () => unknown, bytes: number, reps: number): number {
  fn();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    fn();
    best = Math.min(best, performance.now() - start);
  }
  return bytes / (best * 1e6);
}

/** Every probe kernel now, `reps` samples each (the buffers freed after). */
export function probeBandwidth(reps = 7): Bandwidth {
  const n = BYTES / 4;
  const src = new Float32Array(n).fill(1);
  const dst = new Float32Array(n);
  const parts = wasmPool()?.threads ?? 1;
  const a = wasmTensor('float32', [n]);
  const b = wasmTensor('float32', [n]);
  try {
    a.data.fill(1);
    b.data.fill(1);
    const copy = (k: number): Job[] => splitRange(BYTES / 64, k).map(([lo, hi]) => ({ fn: 'copy', args: [b.data.byteOffset + lo * 64, a.data.byteOffset + lo * 64, (hi - lo) * 64] }));
    const fill = (k: number): Job[] => splitRange(BYTES / 64, k).map(([lo, hi]) => ({ fn: 'zero', args: [b.data.byteOffset + lo * 64, (hi - lo) * 64] }));
    const typedCopy = () => {
      dst.set(src);
    };
    const kernels: ProbeKernel[] = [{ kernel: 'typed-array copy', threads: 1, gbps: bestGbps(typedCopy, 2 * BYTES, reps) }];
    // Node: memcmp of two equal arrays (dst is a copy of src now) reads both to the end and writes nothing
    if (typeof Buffer === 'function') kernels.push({ kernel: 'buffer compare (read)', threads: 1, gbps: bestGbps(() => Buffer.compare(Buffer.from(src.buffer), Buffer.from(dst.buffer)), 2 * BYTES, reps) });
    kernels.push({ kernel: 'typed-array fill', threads: 1, gbps: bestGbps(() => dst.fill(0), BYTES, reps) });
    for (const threads of [...new Set([1, parts])]) {
      const run = (jobs: readonly Job[]) => () => {
        runWasmJobs(jobs);
      };
      kernels.push({ kernel: 'wasm copy', threads, gbps: bestGbps(run(copy(threads)), 2 * BYTES, reps) });
      kernels.push({ kernel: 'wasm fill', threads, gbps: bestGbps(run(fill(threads)), BYTES, reps) });
    }
    return strongest(kernels);
  } finally {
    freeWasmTensor(a);
    freeWasmTensor(b);
  }
}
