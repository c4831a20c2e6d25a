/**
 * PyTorch as an interleaved peer (`normkit bench --pytorch-interleaved`, and the check of PyTorch's outputs in
 * test/bench-peers.test.ts): a Python with torch runs scripts/bench-pytorch.py in a subprocess (one per
 * prepared shape), which times its own calls by the harness's sample rules (`Prepared.time`), so the
 * pipe's latency is not in the rows. At 1 thread and at all threads, in both layouts (channels-last as
 * torch.channels_last). These rows are slower than PyTorch timed alone (pytorch-standalone.ts): page faults
 * on outputs that glibc hands back between ops, and the passive OpenMP wait; docs/bench-method.md.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Layout } from '../../core/layout.js';
import type { BenchData, Op, Prepared, System } from '../types.js';
import { ops } from '../types.js';

/** The peer's script, shipped with the package (the same path from src/ and dist/). */
export const pytorchScript = fileURLToPath(new URL('../../../scripts/bench-pytorch.py', import.meta.url));

export type TorchPython = { readonly python: string; readonly version: string } | { readonly reason: string };

function probe(python: string): Promise<{ version: string } | { reason: string }> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import torch; print(torch.__version__)'], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error === null) resolve({ version: stdout.trim() });
      else resolve({ reason: `${python}: ${stderr.trim().split('\n').at(-1) ?? ''}`.replace(/: $/, `: ${error.message}`) });
    });
  });
}

/**
 * The Python to run: NORMKIT_TORCH_PYTHON when set, else `python3` if it imports torch, else Debian's
 * /usr/bin/python3 (python3-torch) where `python3` is another interpreter (pyenv); or why there is none.
 */
export async function findTorchPython(env: NodeJS.ProcessEnv = process.env): Promise<TorchPython> {
  const chosen = env.NORMKIT_TORCH_PYTHON;
  const candidates = chosen !== undefined && chosen !== '' ? [chosen] : ['python3', '/usr/bin/python3'];
  const reasons: string[] = [];
  for (const python of candidates) {
    const found = await probe(python);
    if ('version' in found) return { python, version: found.version };
    reasons.push(found.reason);
  }
  return { reason: `no Python with torch (${reasons.join('; ')})` };
}

type Reply = Readonly<Record<string, unknown>>;

/** One peer process: JSON requests one at a time, one JSON line back each. */
class PeerProcess {
  private readonly waiting: ((line: string | null) => void)[] = [];
  private stderr = '';
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => this.waiting.shift()?.(line));
    lines.on('close', () => {
      for (const resolve of this.waiting.splice(0)) resolve(null);
    });
    // a peer that failed to start or died: its reason is in stderr, and the pending request gets null
    const note = (error: Error) => {
      this.stderr += error.message;
    };
    child.on('error', note);
    child.stdin.on('error', note);
  }

  /**
   * OpenMP threads that spin between calls lose the core on a shared machine: at 2 threads a call after an
   * idle gap took 100-190 ms instead of 0.035 ms (shape C), so passive waits unless OMP_WAIT_POLICY is set.
   */
  static start(command: readonly string[]): PeerProcess {
    const env = { OMP_WAIT_POLICY: 'PASSIVE', ...process.env };
    return new PeerProcess(spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env }));
  }

  async request(body: Readonly<Record<string, unknown>>): Promise<Reply> {
    const line = await new Promise<string | null>((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin.write(`${JSON.stringify(body)}\n`);
    });
    if (line === null) throw new Error(`the PyTorch peer exited: ${this.stderr.trim().split('\n').slice(-3).join(' | ') || 'no output'}`);
    const reply: unknown = JSON.parse(line);
    if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) throw new Error(`the PyTorch peer answered ${line}`);
    const fields = reply as Reply;
    if (typeof fields.error === 'string') throw new Error(`PyTorch: ${fields.error}`);
    return fields;
  }

  close(): void {
    this.child.stdin.end();
  }
}

function isOp(value: unknown): value is Op {
  return ops.some((op) => op === value);
}

export interface PytorchOptions {
  /** The interpreter and any arguments before the script (tests use a fake peer). */
  readonly python: readonly string[];
  readonly script?: string;
  /** Thread counts to run at (1 and all). */
  readonly threads: readonly number[];
  /** The rows' system name (default `pytorch`). */
  readonly name?: string;
}

function pytorchSystem(options: PytorchOptions, threads: number, layout: Layout): System {
  return {
    name: options.name ?? 'pytorch',
    threads,
    layout,
    supports: (spec) => spec.layout === layout,
    prepare: async (data: BenchData): Promise<Prepared> => {
      const { spec } = data;
      const dir = mkdtempSync(join(tmpdir(), 'normkit-pytorch-'));
      const inputs = join(dir, 'inputs.f32');
      const parts = [data.x, data.dy, data.weight, data.bias, data.runningMean, data.runningVar];
      writeFileSync(inputs, Buffer.concat(parts.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))));
      const peer = PeerProcess.start([...options.python, options.script ?? pytorchScript, String(threads)]);
      const dispose = () => {
        peer.close();
        rmSync(dir, { recursive: true, force: true });
      };
      try {
        const reply = await peer.request({ cmd: 'prepare', norm: spec.norm, shape: spec.shape, layout: spec.layout, groups: spec.groups ?? 1, eps: data.eps, inputs });
        const supported = Array.isArray(reply.ops) ? reply.ops.filter(isOp) : [];
        const time = async (op: Op, calls: number) => {
          const { ms } = await peer.request({ cmd: 'time', op, calls });
          if (typeof ms !== 'number' || !(ms > 0)) throw new Error(`the PyTorch peer timed ${op} as ${String(ms)}`);
          return ms;
        };
        return {
          run: Object.fromEntries(supported.map((op) => [op, () => time(op, 1)])),
          time,
          result: async (op) => {
            const out = join(dir, `${op}.f32`);
            await peer.request({ cmd: 'result', op, out });
            const bytes = readFileSync(out);
            return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
          },
          dispose,
        };
      } catch (error) {
        dispose();
        throw error;
      }
    },
  };
}

/** PyTorch at each thread count, in both layouts. */
export function pytorchSystems(options: PytorchOptions): System[] {
  return [...new Set(options.threads)].flatMap((threads) => (['channels-first', 'channels-last'] as const).map((layout) => pytorchSystem(options, threads, layout)));
}
