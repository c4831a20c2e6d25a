// Headless Chromium for the browser tests: Debian's package, installed here when missing and possible.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Installs Debian's chromium when it is missing and this process may (root with apt-get); else says how. */
export function ensureChromium(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (root && existsSync('/usr/bin/apt-get')) {
    console.log('# installing Debian chromium for the browser tests (apt-get install -y chromium)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-q', 'chromium'], { stdio: 'inherit', env });
    if (existsSync(CHROMIUM)) return CHROMIUM;
  }
  throw new Error(
    `Chromium is missing at ${CHROMIUM}: the browser tests need Debian's chromium package. Install it with 'sudo apt-get install -y chromium' (or set CHROMIUM_PATH), then run npm test again.`,
  );
}

/** webgpu: offer WebGPU (headless Chromium then gives SwiftShader's adapter where there is no GPU). */
export function launchChromium(options: { webgpu?: boolean } = {}): Promise<Browser> {
  const gpu = options.webgpu === true ? ['--enable-unsafe-webgpu'] : ['--disable-gpu'];
  return chromium.launch({
    executablePath: ensureChromium(),
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', ...gpu],
  });
}

/** Which fonts this machine has (fontconfig's list, hashed): screenshots compare only where it is the same. */
export function fontFingerprint(): string {
  try {
    const list = execFileSync('fc-list', [':', 'family', 'file'], { encoding: 'utf8' }).split('\n').sort().join('\n');
    return createHash('sha256').update(list).digest('hex').slice(0, 16);
  } catch {
    return 'no fontconfig';
  }
}
