/** The benchmark's table (terminal), Markdown table and chart (a Vega-Lite spec, drawn by src/io/chart.ts) from its rows. */
import type { TopLevelSpec } from 'vega-lite';
import { formatTable } from '../io/table.js';
import { chartConfig } from '../io/chart.js';
import type { Row } from './types.js';
import { shapeSpecs } from './types.js';
import { numel } from '../core/float.js';

const elements: Readonly<Record<string, number>> = Object.fromEntries(shapeSpecs.map((s) => [s.name, numel(s.shape)]));

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
          (r.median_ms / (boundOf(r, group) ?? Number.NaN)).toFixed(2),
          r.system.startsWith('normkit') || r.system.endsWith('-bound') ? '' : lead(r.median_ms / best),
        ]),
      ),
    );
    out.push('');
  }
  return out.join('\n');
}

/** The bound a row is measured against: the GPU's copy bound for webgpu rows (and itself) where it was probed, else the DRAM bound. */
function boundOf(row: Row, group: readonly Row[]): number | undefined {
  const dram = group.find((r) => r.system === 'dram-bound')?.median_ms;
  const gpu = group.find((r) => r.system === 'gpu-bound')?.median_ms;
  return row.system.startsWith('normkit-webgpu') || row.system === 'gpu-bound' ? (gpu ?? dram) : dram;
}

/** Horizontal bars of median / bound (log scale), one panel per shape, layout and op, one bar per system. */
export function benchChart(rows: readonly Row[]): TopLevelSpec {
  const panels = groupsOf(rows).flatMap((group) => {
    const values = group.flatMap((r) => {
      const bound = boundOf(r, group);
      if (r.system.endsWith('-bound') || bound === undefined) return [];
      const ratio = r.median_ms / bound;
      return [{ system: `${r.system} (${r.threads}t)`, kind: r.system.startsWith('normkit') ? 'normkit' : 'other library', ratio, label: `${fmt(ratio)}x` }];
    });
    const { shape, layout, op } = group[0];
    return values.length === 0 ? [] : [{ title: `${shape} ${layout} · ${op}`, values }];
  });
  const highest = Math.max(...panels.flatMap((p) => p.values.map((v) => v.ratio)));
  // round ticks: 1, 2, 5, 10, 20, 50, ... up to the largest ratio
  const ticks = Array.from({ length: 3 * Math.ceil(Math.log10(Math.max(highest, 1)) + 1) }, (_, k) => [1, 2, 5][k % 3] * 10 ** Math.floor(k / 3)).filter((t) => t <= highest * 1.5);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Median time / minimal-traffic bound of the same run', subtitle: '1 = the bound (DRAM; webgpu rows: the GPU copy bound); log scale' },
    config: { ...chartConfig, view: { stroke: null }, title: { ...chartConfig.title, subtitleFontSize: 12 } },
    vconcat: panels.map(({ title, values }) => ({
      title: { text: title, fontSize: 12 },
      data: { values },
      width: 520,
      encoding: {
        x: { field: 'ratio', type: 'quantitative', title: null, scale: { type: 'log', domainMin: 1 }, axis: { values: ticks } },
        y: { field: 'system', type: 'nominal', sort: { field: 'ratio', op: 'min' }, title: null, axis: { labelLimit: 240 } },
      },
      layer: [
        {
          mark: { type: 'bar', height: 12 },
          encoding: { x2: { datum: 1 }, color: { field: 'kind', type: 'nominal', title: null, scale: { domain: ['normkit', 'other library'], range: ['#2f6fdb', '#8c96a8'] }, legend: { orient: 'top' } } },
        },
        { mark: { type: 'text', align: 'left', dx: 4, fontSize: 11 }, encoding: { text: { field: 'label' } } },
      ],
    })),
    resolve: { scale: { x: 'shared' } },
  };
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

