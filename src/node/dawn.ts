/** WebGPU in Node.js through Dawn (the optional `webgpu` package), with a clear error where it is missing. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { NormkitError } from '../errors.js';
import { WebGpuNorm } from '../kernels/webgpu/engine.js';
import type { WebGpuNormOptions } from '../kernels/webgpu/engine.js';

/**
 * Where the process has no XDG_RUNTIME_DIR, Dawn's start prints "error: XDG_RUNTIME_DIR is invalid or not set
 * in the environment." twice (Mesa's Wayland probe, looking for a display socket): give the process a private,
 * empty one (mode 0700, removed at exit). Only the main thread can set the real environment, so
 * startWebGpu calls this before it starts Dawn's worker.
 */
export function quietRuntimeDir(): void {
  if (process.env.XDG_RUNTIME_DIR !== undefined || !isMainThread) return;
  const dir = mkdtempSync(join(tmpdir(), 'normkit-runtime-'));
  process.env.XDG_RUNTIME_DIR = dir;
  process.once('exit', () => {
    rmSync(dir, { recursive: true, force: true });
  });
}

/** One Dawn instance per thread, held here: its devices crash once the instance is garbage-collected. */
let instance: GPU | null = null;

/** Dawn's navigator.gpu. Without a GPU, SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json. */
export async function dawnGpu(): Promise<GPU> {
  if (instance !== null) return instance;
  let dawn: { create: (options: string[]) => GPU };
  try {
    dawn = await import('webgpu');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new NormkitError('backend', `the webgpu backend needs the optional dependency 'webgpu' (Dawn for Node.js): npm install webgpu (${reason})`);
  }
  quietRuntimeDir();
  // timestamps at full resolution (browsers quantize them against timing attacks; here they serve benchmarks)
  instance = dawn.create(['disable-dawn-features=timestamp_quantization']);
  return instance;
}

/**
 * The webgpu backend on GPU-resident tensors, on a new Dawn device (its work runs on this thread's event
 * loop); `timestamps` asks for 'timestamp-query' where the adapter has it (WebGpuNorm.startTiming); `exactUpTo`: see WebGpuNormOptions.
 */
export async function createNodeWebGpu(options: { timestamps?: boolean } & WebGpuNormOptions = {}): Promise<WebGpuNorm> {
  return WebGpuNorm.create({ ...options, gpu: await dawnGpu() });
}
