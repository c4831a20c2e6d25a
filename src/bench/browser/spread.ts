/** Rows of several page loads as one: the median of the loads' medians, and their spread (slowest / fastest load). */
import { median } from '../timing.js';
import type { Row } from '../types.js';

export interface SpreadRow extends Row {
  /** The median of each load, in load order. */
  readonly loads_ms: readonly number[];
  /** Slowest load's median / fastest load's median. */
  readonly spread: number;
}

const keyOf = (r: Row) => `${r.system}|${r.threads}|${r.shape}|${r.layout}|${r.op}`;

export function acrossLoads(loads: readonly (readonly Row[])[]): SpreadRow[] {
  const groups = new Map<string, Row[]>();
  for (const rows of loads) for (const row of rows) groups.set(keyOf(row), [...(groups.get(keyOf(row)) ?? []), row]);
  return [...groups.values()].map((rows) => {
    const medians = rows.map((r) => r.median_ms);
    return {
      ...rows[0],
      median_ms: median(medians),
      min_ms: Math.min(...rows.map((r) => r.min_ms)),
      loads_ms: medians,
      spread: Math.max(...medians) / Math.min(...medians),
    };
  });
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toFixed(4));

/** One Markdown table: a row per shape, layout and op; a column per system: median ms over the loads, and ×spread where loads differ by 5% or more. */
export function formatSpreadMarkdown(rows: readonly SpreadRow[]): string {
  const label = (r: Row) => `${r.system} (${r.threads}t)`;
  const systems = [...new Set(rows.filter((r) => !r.system.endsWith('-bound')).map(label))];
  const header = ['shape', 'op', 'DRAM bound', ...systems];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  const cases = [...new Set(rows.map((r) => `${r.shape}|${r.layout}|${r.op}`))];
  for (const c of cases) {
    const group = rows.filter((r) => `${r.shape}|${r.layout}|${r.op}` === c);
    const { shape, layout, op } = group[0];
    const bound = group.find((r) => r.system === 'dram-bound');
    const cell = (name: string) => {
      const row = group.find((r) => label(r) === name);
      if (row === undefined) return '—';
      return row.spread >= 1.05 ? `${fmt(row.median_ms)} ×${row.spread.toFixed(2)}` : fmt(row.median_ms);
    };
    lines.push(`| ${shape}${layout === 'channels-last' ? ' (NHWC)' : ''} | ${op} | ${bound === undefined ? '—' : fmt(bound.median_ms)} | ${systems.map(cell).join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}
