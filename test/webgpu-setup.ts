// Starts the webgpu backend for a test file. Without a GPU, Dawn runs on SwiftShader (Debian chromium's
// Vulkan ICD + libvulkan1, installed here when missing and this process may). Tests skip with the reason
// only where no adapter exists, and never where NORMKIT_REQUIRE_WEBGPU is set (.ci/run sets it).
import { execFileSync } from 'node:child_process';
import { after, before, it } from 'node:test';
import { existsSync } from 'node:fs';
import type { WebGpuNorm } from '../src/kernels/webgpu/engine.ts';
import { startWebGpu } from '../src/node/webgpu-threads.ts';
import { ensureChromium } from './browser.ts';

export const swiftshaderIcd = '/usr/lib/chromium/vk_swiftshader_icd.json';

function hasVulkanLoader(): boolean {
  return ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1', '/usr/lib/libvulkan.so.1'].some((p) => existsSync(p));
}

/** Points Vulkan at SwiftShader where no ICD is chosen (Dawn reads it when it starts), installing the loader where it may. */
function preferSwiftShader(): void {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!hasVulkanLoader() && root && existsSync('/usr/bin/apt-get')) {
    console.log('# installing the Vulkan loader for the webgpu tests (apt-get install -y libvulkan1)');
    execFileSync('apt-get', ['install', '-y', '-q', 'libvulkan1'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (process.env.VK_ICD_FILENAMES === undefined && existsSync(ensureChromium()) && existsSync(swiftshaderIcd)) process.env.VK_ICD_FILENAMES = swiftshaderIcd;
}

export type WebGpuSetup = { ok: true; adapter: string } | { ok: false; reason: string };

let started: Promise<WebGpuSetup> | null = null;

export function useWebGpu(): Promise<WebGpuSetup> {
  started ??= (async (): Promise<WebGpuSetup> => {
    try {
      preferSwiftShader();
      return { ok: true, adapter: await startWebGpu() };
    } catch (error) {
      if (process.env.NORMKIT_REQUIRE_WEBGPU !== undefined) throw error;
      return { ok: false, reason: `no WebGPU adapter here: ${error instanceof Error ? error.message : String(error)}` };
    }
  })();
  return started;
}

/**
 * Registers, in the current describe, hooks that start webgpu and make an engine with `makeEngine` (destroyed
 * after), and returns `it` for tests that need both: each gets the engine and the adapter's name, and skips
 * with the reason where no adapter exists.
 */
export function gpuTests(makeEngine: () => Promise<WebGpuNorm>): (name: string, body: (engine: WebGpuNorm, adapter: string) => Promise<void> | void) => void {
  let gpu: WebGpuSetup = { ok: false, reason: 'not started' };
  let engine: WebGpuNorm | null = null;
  before(async () => {
    gpu = await useWebGpu();
    if (gpu.ok) engine = await makeEngine();
  });
  after(() => {
    engine?.destroy();
  });
  return (name, body) => {
    it(name, async (t) => {
      if (!gpu.ok || engine === null) {
        t.skip(gpu.ok ? 'no engine' : gpu.reason);
        return;
      }
      await body(engine, gpu.adapter);
    });
  };
}
