/** The roofline of this run: the best copy bandwidth seen (a typed-array copy, and a wasm SIMD copy on every thread). */
import { freeWasmTensor, runWasmJobs, wasmPool, wasmTensor } from '../kernels/wasm/backend.js';
import { splitRange } from '../kernels/wasm/pool.js';
import { medianMs } from './timing.js';

export interface Bandwidth {
  /** GB/s of bytes read plus bytes written. */
  readonly typedCopy: number;
  readonly wasmCopy: number;
  readonly best: number;
  /** The GPU's buffer-to-buffer copy (webgpu), where an adapter exists. */
  readonly gpu?: number;
}

const BYTES = 128 * 1024 * 1024;

/** The copy bandwidth now: the median of `reps` samples of each copy, 128 MB read + written (the buffers freed after). */
export function probeBandwidth(reps = 7): Bandwidth {
  const n = BYTES / 4;
  const src = new Float32Array(n).fill(1);
  const dst = new Float32Array(n);
  const a = wasmTensor('float32', [n]);
  const b = wasmTensor('float32', [n]);
  try {
    a.data.fill(1);
    const parts = wasmPool()?.threads ?? 1;
    const jobs = splitRange(BYTES / 64, parts).map(([lo, hi]) => ({ fn: 'copy' as const, args: [b.data.byteOffset + lo * 64, a.data.byteOffset + lo * 64, (hi - lo) * 64] as const }));
    const gbps = (copy: () => void): number => (2 * BYTES) / (medianMs(copy, reps) * 1e6);
    const typedCopy = gbps(() => {
      dst.set(src);
    });
    const wasmCopy = gbps(() => {
      runWasmJobs(jobs);
    });
    return { typedCopy, wasmCopy, best: Math.max(typedCopy, wasmCopy) };
  } finally {
    freeWasmTensor(a);
    freeWasmTensor(b);
  }
}
