/**
 * The scoreboard: normkit's default layer path (normkit-layer, 1 thread and all) against PyTorch timed
 * standalone (pytorch-<version>, 1 thread and all) and the strong DRAM bound, per shape and op, with the
 * ratios normkit / PyTorch and normkit / bound (each side at its better thread count).
 */
import { formatTable } from '../cli/table.js';
import type { Bound } from './harness.js';
import type { Row } from './types.js';
import { ops, shapeSpecs } from './types.js';

export interface ScoreboardInput {
  readonly rows: readonly Row[];
  /** Per shape and layout (`boundKey`): the bandwidth the bound is at and which probe set it. */
  readonly bounds: ReadonlyMap<string, Bound>;
  /** The thread count besides 1. */
  readonly threads: number;
  /** PyTorch's version, where its standalone rows exist. */
  readonly torch?: string | undefined;
}

export const boundKey = (shape: string, layout: string): string => `${shape} ${layout}`;

const fmt = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toFixed(4));
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !Number.isFinite(a / b) ? '—' : (a / b).toFixed(2));

/** The header and one line of cells per shape, layout and op that has a normkit-layer or PyTorch row. */
export function scoreboardCells(input: ScoreboardInput): { header: string[]; lines: string[][] } {
  const { rows, threads, torch } = input;
  const pytorch = torch === undefined ? undefined : `pytorch-${torch}`;
  const counts = [...new Set([1, threads])];
  const torchLabel = torch === undefined ? 'PyTorch (not run)' : `PyTorch ${torch} standalone`;
  const header = ['shape', 'op', ...counts.map((t) => `normkit-layer ${t}t ms`), ...counts.map((t) => `${torchLabel} ${t}t ms`), 'DRAM bound ms', 'normkit / PyTorch', 'normkit / bound'];
  const lines: string[][] = [];
  const layouts = [...new Set(shapeSpecs.map((s) => `${s.name}\u0000${s.layout}`))].map((k) => k.split('\u0000'));
  for (const [shape, layout] of layouts) {
    for (const op of ops) {
      const find = (system: string | undefined, t: number) => rows.find((r) => r.system === system && r.threads === t && r.shape === shape && r.layout === layout && r.op === op)?.median_ms;
      const normkit = counts.map((t) => find('normkit-layer', t));
      const peer = counts.map((t) => find(pytorch, t));
      if ([...normkit, ...peer].every((v) => v === undefined)) continue;
      const best = (values: (number | undefined)[]) => {
        const known = values.filter((v): v is number => v !== undefined);
        return known.length === 0 ? undefined : Math.min(...known);
      };
      const bound = rows.find((r) => r.system === 'dram-bound' && r.shape === shape && r.layout === layout && r.op === op)?.median_ms;
      lines.push([layout === 'channels-last' ? `${shape} (NHWC)` : shape, op, ...normkit.map(fmt), ...peer.map(fmt), fmt(bound), ratio(best(normkit), best(peer)), ratio(best(normkit), bound)]);
    }
  }
  return { header, lines };
}

/** What the bound of each shape was measured by, one line each. */
function boundNotes(bounds: ReadonlyMap<string, Bound>): string[] {
  return [...bounds].map(([key, b]) => `${key}: ${b.gbps.toFixed(1)} GB/s (${b.source})`);
}

const method =
  'Medians in ms, float32. normkit-layer: the default layer path, timed by `normkit bench` (interleaved with its own variants only). ' +
  'PyTorch: `torch.utils.benchmark.Timer(...).blocked_autorange()` in a process of its own before anything of normkit ran (scripts/bench-pytorch.py standalone). ' +
  'DRAM bound: minimal bytes (forward and inference 8 B per element, backward 12, forward+backward 20) at the strongest bandwidth probed in the run. ' +
  'Ratios take each side at its better thread count; below 1 normkit is faster (normkit / PyTorch) or nearer the bound.';

export function formatScoreboardMarkdown(input: ScoreboardInput): string {
  const { header, lines } = scoreboardCells(input);
  const table = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...lines.map((cells) => `| ${cells.join(' | ')} |`)];
  return `${table.join('\n')}\n\n${method}\n\nBound per shape:\n${boundNotes(input.bounds)
    .map((line) => `- ${line}`)
    .join('\n')}\n`;
}

export function formatScoreboard(input: ScoreboardInput): string {
  const { header, lines } = scoreboardCells(input);
  return `scoreboard\n${formatTable(header, lines)}\n${boundNotes(input.bounds)
    .map((line) => `  bound ${line}`)
    .join('\n')}\n`;
}
