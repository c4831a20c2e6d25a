/**
 * PyTorch timed as PyTorch times itself: scripts/bench-pytorch.py standalone runs
 * torch.utils.benchmark.Timer(...).blocked_autorange() in a process of its own, started by `normkit bench`
 * before anything of normkit runs (no worker pool, no other system interleaved). Its rows are named
 * `pytorch-<version>`: the version stands beside every PyTorch figure.
 */
import { execFile } from 'node:child_process';
import type { Layout } from '../../core/layout.js';
import type { Op, Row } from '../types.js';
import { ops } from '../types.js';
import { pytorchScript } from './pytorch.js';

export interface StandaloneResult {
  readonly version: string;
  readonly rows: readonly Row[];
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isOp = (value: unknown): value is Op => ops.some((op) => op === value);
const isLayout = (value: unknown): value is Layout => value === 'channels-first' || value === 'channels-last';
const positive = (value: unknown): value is number => typeof value === 'number' && value > 0 && Number.isFinite(value);

/** The system name of PyTorch's standalone rows. */
export function standaloneName(version: string): string {
  return `pytorch-${version}`;
}

/** The script's --json output as rows; throws, naming what is wrong, on anything else. */
export function parseStandalone(text: string): StandaloneResult {
  const parsed: unknown = JSON.parse(text);
  if (!isRecord(parsed) || typeof parsed.torch !== 'string' || !Array.isArray(parsed.rows)) throw new Error(`PyTorch standalone printed no {torch, rows}: ${text.slice(0, 200)}`);
  const system = standaloneName(parsed.torch);
  const rows = parsed.rows.map((r: unknown): Row => {
    if (!isRecord(r) || typeof r.shape !== 'string' || !isLayout(r.layout) || !isOp(r.op) || !Number.isInteger(r.threads) || !positive(r.threads) || !positive(r.median_ms) || !positive(r.min_ms)) {
      throw new Error(`PyTorch standalone printed a row without shape, layout, op, threads and positive times: ${JSON.stringify(r)}`);
    }
    return { system, threads: r.threads, shape: r.shape, layout: r.layout, op: r.op, median_ms: r.median_ms, min_ms: r.min_ms };
  });
  return { version: parsed.torch, rows };
}

export interface StandaloneOptions {
  /** The interpreter and any arguments before the script (tests use a fake one). */
  readonly python: readonly string[];
  readonly script?: string;
  readonly threads: readonly number[];
  readonly shapes: readonly string[];
  /** Seconds blocked_autorange runs each op. */
  readonly minRunTime?: number;
}

/** Runs the standalone timing and returns its rows; rejects with the script's last error line. */
export function runPytorchStandalone(options: StandaloneOptions): Promise<StandaloneResult> {
  const args = [
    ...options.python.slice(1),
    options.script ?? pytorchScript,
    'standalone',
    '--json',
    '--threads',
    [...new Set(options.threads)].join(','),
    '--shapes',
    options.shapes.join(','),
    '--min-run-time',
    String(options.minRunTime ?? 1),
  ];
  return new Promise((resolve, reject) => {
    // PyTorch's own defaults: no OMP_WAIT_POLICY or thread variables added (the interleaved peer sets PASSIVE)
    execFile(options.python[0], args, { timeout: 1_800_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`PyTorch standalone failed: ${stderr.trim().split('\n').at(-1) ?? error.message}`));
        return;
      }
      try {
        resolve(parseStandalone(stdout.trim()));
      } catch (parseError) {
        reject(parseError instanceof Error ? parseError : new Error(String(parseError)));
      }
    });
  });
}
