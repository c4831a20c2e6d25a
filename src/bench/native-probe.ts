/**
 * The memory bandwidth native code gets (scripts/native-probe.c, compiled by scripts/native-probe.sh with the
 * system C compiler): copy, add, read-only sum and write-only fill, 1 thread and all threads, best samples.
 * The bench's bound takes the stronger of this and the in-process probe (probe.ts).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ProbeKernel } from './probe.js';

/** The runner, shipped with the package (the same path from src/ and dist/). */
export const nativeProbeScript = fileURLToPath(new URL('../../scripts/native-probe.sh', import.meta.url));

export type NativeProbe = { readonly kernels: readonly ProbeKernel[] } | { readonly reason: string };

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The probe's JSON line as kernels named `native <name>`; throws on anything else. */
export function parseNativeProbe(text: string): ProbeKernel[] {
  const parsed: unknown = JSON.parse(text);
  if (!isRecord(parsed) || !Array.isArray(parsed.kernels)) throw new Error(`the native probe printed no kernels: ${text.slice(0, 200)}`);
  return parsed.kernels.map((k: unknown) => {
    if (!isRecord(k) || typeof k.name !== 'string' || typeof k.threads !== 'number' || typeof k.gbps !== 'number' || !(k.gbps > 0) || !Number.isInteger(k.threads) || k.threads < 1) {
      throw new Error(`the native probe printed a kernel without name, threads and GB/s: ${JSON.stringify(k)}`);
    }
    return { kernel: `native ${k.name}`, threads: k.threads, gbps: k.gbps };
  });
}

/** Compiles and runs the native probe (`mb` MB per array, `reps` samples); the reason where it cannot. */
export function probeNative(mb = 128, reps = 10, script = nativeProbeScript): Promise<NativeProbe> {
  return new Promise((resolve) => {
    execFile('sh', [script, String(mb), String(reps)], { timeout: 300_000 }, (error, stdout, stderr) => {
      if (error !== null) {
        resolve({ reason: stderr.trim().split('\n').at(-1) ?? error.message });
        return;
      }
      try {
        resolve({ kernels: parseNativeProbe(stdout.trim()) });
      } catch (parseError) {
        resolve({ reason: parseError instanceof Error ? parseError.message : String(parseError) });
      }
    });
  });
}
