// Starts the webgpu backend for a test file. Without a GPU, Dawn runs on SwiftShader (Debian chromium's
// Vulkan ICD + libvulkan1); tests skip with the reason only where no adapter exists, and never in CI.
import { existsSync } from 'node:fs';
import { startWebGpu } from '../src/node/webgpu-threads.ts';

export const swiftshaderIcd = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Points Vulkan at SwiftShader where no ICD is chosen; Dawn reads this when it starts. */
export function preferSwiftShader(): void {
  if (process.env.VK_ICD_FILENAMES === undefined && existsSync(swiftshaderIcd)) process.env.VK_ICD_FILENAMES = swiftshaderIcd;
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
}

export type WebGpuSetup = { ok: true; adapter: string } | { ok: false; reason: string };

let started: Promise<WebGpuSetup> | null = null;

export function useWebGpu(): Promise<WebGpuSetup> {
  started ??= (async (): Promise<WebGpuSetup> => {
    preferSwiftShader();
    try {
      return { ok: true, adapter: await startWebGpu() };
    } catch (error) {
      if (process.env.CI !== undefined) throw error;
      return { ok: false, reason: `no WebGPU adapter here: ${error instanceof Error ? error.message : String(error)}` };
    }
  })();
  return started;
}
