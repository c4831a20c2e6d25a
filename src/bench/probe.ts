/** The roofline of this run: the best copy bandwidth seen (a typed-array copy, and a wasm SIMD copy on every thread). */
import { freeWasmTensor, runWasmJobs, wasmPool, wasmTensor } from '../kernels/wasm/backend.js';
import { splitRange } from '../kernels/wasm/pool.js';
import { median } from './timing.js';

export interface Bandwidth {
  /** GB/s of bytes read plus bytes written. */
  readonly typedCopy: number;
  readonly wasmCopy: number;
  readonly best: number;
  /** The GPU's buffer-to-buffer copy (webgpu), where an adapter exists. */
  readonly gpu?: number;
}

const BYTES = 128 * 1024 * 1024;

/** Copies 128 MB (a typed-array set, and a wasm SIMD copy on every thread) on demand; GB/s of each, read + write. */
interface CopyProbe {
  /** One sample of each copy: their GB/s. */
  sample(): { readonly typedCopy: number; readonly wasmCopy: number };
  dispose(): void;
}

function copyProbe(): CopyProbe {
  const n = BYTES / 4;
  const src = new Float32Array(n).fill(1);
  const dst = new Float32Array(n);
  const a = wasmTensor('float32', [n]);
  const b = wasmTensor('float32', [n]);
  a.data.fill(1);
  const parts = wasmPool()?.threads ?? 1;
  const jobs = splitRange(BYTES / 64, parts).map(([lo, hi]) => ({ fn: 'copy' as const, args: [b.data.byteOffset + lo * 64, a.data.byteOffset + lo * 64, (hi - lo) * 64] as const }));
  const gbps = (copy: () => void): number => {
    const start = performance.now();
    copy();
    return (2 * BYTES) / ((performance.now() - start) * 1e6);
  };
  return {
    sample: () => ({ typedCopy: gbps(() => { dst.set(src); }), wasmCopy: gbps(() => { runWasmJobs(jobs); }) }),
    dispose: () => {
      freeWasmTensor(a);
      freeWasmTensor(b);
    },
  };
}

/** The copy bandwidth now: the median of `reps` samples of each copy (the buffers freed after). */
export function probeBandwidth(reps = 7): Bandwidth {
  const probe = copyProbe();
  try {
    probe.sample();
    const samples = Array.from({ length: reps }, () => probe.sample());
    const typedCopy = median(samples.map((s) => s.typedCopy));
    const wasmCopy = median(samples.map((s) => s.wasmCopy));
    return { typedCopy, wasmCopy, best: Math.max(typedCopy, wasmCopy) };
  } finally {
    probe.dispose();
  }
}
