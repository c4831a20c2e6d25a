/** The benchmark's table (terminal) and chart (SVG) from its rows. */
import { formatTable } from '../cli/table.js';
import type { Row } from './types.js';
import { shapeSpecs } from './types.js';

const elements: Readonly<Record<string, number>> = Object.fromEntries(shapeSpecs.map((s) => [s.name, s.shape.reduce((p, d) => p * d, 1)]));

function groupsOf(rows: readonly Row[]): Row[][] {
  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const key = `${row.shape} ${row.layout} ${row.op}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  return [...groups.values()];
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toFixed(4));

/** A peer's time against the best normkit: "3.2x slower", or "1.5x faster" where the peer leads; nothing without normkit rows. */
const lead = (ratio: number) => (!Number.isFinite(ratio) || ratio === 0 ? '' : ratio >= 1 ? `${ratio.toFixed(1)}x slower` : `${(1 / ratio).toFixed(1)}x faster`);

/** One table per shape, layout and op: times, GB/s of minimal traffic, ratio to the roofline (webgpu rows: the GPU's) and normkit's lead. */
export function formatReport(rows: readonly Row[], bytesPerElement: Readonly<Record<string, number>>): string {
  const out: string[] = [];
  for (const group of groupsOf(rows)) {
    const { shape, layout, op } = group[0];
    const bound = group.find((r) => r.system === 'dram-bound')?.median_ms ?? Number.NaN;
    // GPU rows against the GPU's copy bandwidth where it was probed
    const gpuBound = group.find((r) => r.system === 'gpu-bound')?.median_ms ?? bound;
    const boundOf = (r: Row) => (r.system.startsWith('normkit-webgpu') || r.system === 'gpu-bound' ? gpuBound : bound);
    const best = Math.min(...group.filter((r) => r.system.startsWith('normkit')).map((r) => r.median_ms));
    const bytes = (elements[shape] ?? 0) * (bytesPerElement[op] ?? 0);
    const sorted = [...group].sort((a, b) => a.median_ms - b.median_ms);
    out.push(`shape ${shape} (${layout}), ${op}`);
    out.push(
      formatTable(
        ['system', 'threads', 'median ms', 'min ms', 'GB/s', 'x bound', 'vs best normkit'],
        sorted.map((r) => [
          r.system,
          r.threads === 0 ? '-' : String(r.threads),
          fmt(r.median_ms),
          fmt(r.min_ms),
          (bytes / (r.median_ms * 1e6)).toFixed(1),
          (r.median_ms / boundOf(r)).toFixed(2),
          r.system.startsWith('normkit') || r.system.endsWith('-bound') ? '' : lead(r.median_ms / best),
        ]),
      ),
    );
    out.push('');
  }
  return out.join('\n');
}

/** Horizontal bars of median / DRAM bound (log scale) for every shape and op, one bar per system. */
export function renderSvg(rows: readonly Row[]): string {
  const groups = groupsOf(rows).filter((g) => g.some((r) => r.system === 'dram-bound'));
  const barH = 14;
  const left = 250;
  const width = 900;
  const maxRatio = Math.max(2, ...rows.map((r) => r.median_ms / (groups.find((g) => g.includes(r))?.find((b) => b.system === 'dram-bound')?.median_ms ?? r.median_ms)));
  const scale = (ratio: number) => ((width - left - 60) * Math.log10(Math.max(1, ratio))) / Math.log10(maxRatio);
  const parts: string[] = [];
  let y = 30;
  for (const group of groups) {
    const { shape, layout, op } = group[0];
    const bound = group.find((r) => r.system === 'dram-bound')?.median_ms ?? 1;
    parts.push(`<text x="10" y="${y}" font-weight="bold">${shape} ${layout} · ${op}</text>`);
    y += 6;
    for (const r of [...group].filter((r) => !r.system.endsWith('-bound')).sort((a, b) => a.median_ms - b.median_ms)) {
      const ratio = r.median_ms / bound;
      const color = r.system.startsWith('normkit') ? '#2f6fdb' : '#9aa6b8';
      parts.push(`<text x="${left - 8}" y="${y + 11}" text-anchor="end">${r.system} (${r.threads}t)</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, scale(ratio)).toFixed(1)}" height="${barH - 2}" fill="${color}"/>`);
      parts.push(`<text x="${left + scale(ratio) + 6}" y="${y + 11}">${ratio.toFixed(2)}x</text>`);
      y += barH;
    }
    y += 18;
  }
  const legend = `<text x="10" y="16" fill="#555">median time / DRAM bound of the same run (1 = the bound; log scale)</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">${legend}${parts.join('')}</svg>\n`;
}

/** One Markdown table: a row per shape, layout and op; a column per system (median ms); the best normkit against the bound. */
export function formatMarkdown(rows: readonly Row[]): string {
  const systems = [...new Set(rows.filter((r) => !r.system.endsWith('-bound')).map((r) => `${r.system} (${r.threads}t)`))];
  const header = ['shape', 'op', 'DRAM bound', ...systems, 'best normkit / bound'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const group of groupsOf(rows)) {
    const { shape, layout, op } = group[0];
    const bound = group.find((r) => r.system === 'dram-bound')?.median_ms ?? Number.NaN;
    const cell = (name: string) => {
      const row = group.find((r) => `${r.system} (${r.threads}t)` === name);
      return row === undefined ? '—' : fmt(row.median_ms);
    };
    const best = Math.min(...group.filter((r) => r.system.startsWith('normkit')).map((r) => r.median_ms));
    lines.push(`| ${shape}${layout === 'channels-last' ? ' (NHWC)' : ''} | ${op} | ${fmt(bound)} | ${systems.map(cell).join(' | ')} | ${(best / bound).toFixed(2)} |`);
  }
  return `${lines.join('\n')}\n`;
}

