/**
 * Loads the compiled kernels (binary.generated.ts, built from assembly/norm.ts) over one memory:
 * shared (threads build) where SharedArrayBuffer exists, else private (SIMD build).
 */
import { NormkitError } from '../../errors.js';
import { simdWasm, threadsWasm } from './binary.generated.js';

export type WasmFn = (...args: number[]) => void;

const kernelNames = [
  'group_forward_f32',
  'group_forward_f64',
  'group_backward_f32',
  'group_backward_f64',
  'rows_moment_f32',
  'rows_moment_f64',
  'rows_affine_f32',
  'rows_affine_f64',
  'rows_backward_sums_f32',
  'rows_backward_sums_f64',
  'rows_dx_f32',
  'rows_dx_f64',
  'rows_reduce_f32',
  'rows_apply_f32',
  'copy',
] as const;
export type KernelName = (typeof kernelNames)[number];
export { kernelNames };

export type Kernels = Readonly<Record<KernelName, WasmFn>>;

/** The module and memory every thread instantiates. */
export interface WasmShared {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
}

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function isFn(value: unknown): value is WasmFn {
  return typeof value === 'function';
}

function kernelsOf(instance: WebAssembly.Instance): Kernels {
  const entries = kernelNames.map((name) => {
    const fn = instance.exports[name];
    if (!isFn(fn)) throw new NormkitError('backend', `wasm kernels: export ${name} is missing`);
    return [name, fn] as const;
  });
  return Object.fromEntries(entries) as Record<KernelName, WasmFn>;
}

const sharedMemoryAvailable = typeof SharedArrayBuffer === 'function' && (typeof crossOriginIsolated === 'undefined' || crossOriginIsolated);

/** Compiles synchronously (Node; small modules in browsers) and returns null where that is refused. */
export function compileSync(): WasmShared | null {
  try {
    const shared = sharedMemoryAvailable;
    const module = new WebAssembly.Module(decode(shared ? threadsWasm : simdWasm));
    const memory = new WebAssembly.Memory(shared ? { initial: 16, maximum: 65536, shared: true } : { initial: 16, maximum: 65536 });
    return { module, memory, shared };
  } catch {
    return null;
  }
}

/** Compiles asynchronously (browsers' main thread refuses synchronous compiles of this size). */
export async function compileAsync(): Promise<WasmShared> {
  const shared = sharedMemoryAvailable;
  const module = await WebAssembly.compile(decode(shared ? threadsWasm : simdWasm));
  const memory = new WebAssembly.Memory(shared ? { initial: 16, maximum: 65536, shared: true } : { initial: 16, maximum: 65536 });
  return { module, memory, shared };
}

export function instantiate(shared: WasmShared): Kernels {
  return kernelsOf(new WebAssembly.Instance(shared.module, { env: { memory: shared.memory } }));
}
