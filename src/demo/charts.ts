/** The demo's charts as SVG (Fig. 1 a, b, c of the paper), and PNG through resvg when it is installed. */
import type { RunResult } from './experiment.js';

const W = 640;
const H = 360;
const PAD = { left: 60, right: 20, top: 40, bottom: 46 };
const COLORS = { baseline: '#9aa6b8', batchnorm: '#2f6fdb' } as const;
const LABELS = { baseline: 'without BN', batchnorm: 'with BN' } as const;

interface Axes {
  readonly x: (v: number) => number;
  readonly y: (v: number) => number;
}

function axes(xMax: number, yMin: number, yMax: number): Axes {
  return {
    x: (v) => PAD.left + ((W - PAD.left - PAD.right) * v) / xMax,
    y: (v) => H - PAD.bottom - ((H - PAD.top - PAD.bottom) * (v - yMin)) / (yMax - yMin),
  };
}

function frame(title: string, a: Axes, xMax: number, yMin: number, yMax: number, yLabel: string): string {
  const parts = [`<rect width="${W}" height="${H}" fill="#fff"/>`, `<text x="${W / 2}" y="22" text-anchor="middle" font-weight="bold">${title}</text>`];
  for (let k = 0; k <= 5; k++) {
    const v = yMin + ((yMax - yMin) * k) / 5;
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${a.y(v)}" y2="${a.y(v)}" stroke="#e6e9ef"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${a.y(v) + 4}" text-anchor="end">${Number(v.toPrecision(3))}</text>`);
    const s = (xMax * k) / 5;
    parts.push(`<text x="${a.x(s)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${Math.round(s)}</text>`);
  }
  parts.push(`<text x="${W / 2}" y="${H - 8}" text-anchor="middle">training step</text>`);
  parts.push(`<text transform="translate(14 ${H / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`);
  return parts.join('');
}

function svg(body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif" font-size="12">${body}</svg>\n`;
}

/** Fig. 1(a): test accuracy against training step, both networks. */
export function accuracyChart(runs: readonly RunResult[]): string {
  const xMax = Math.max(...runs.flatMap((r) => r.checkpoints.map((c) => c.step)));
  const a = axes(xMax, 0, 1);
  const lines = runs.map((r, k) => {
    const points = r.checkpoints.map((c) => `${a.x(c.step).toFixed(1)},${a.y(c.accuracy).toFixed(1)}`).join(' ');
    return `<polyline points="${points}" fill="none" stroke="${COLORS[r.network]}" stroke-width="2"/><text x="${W - PAD.right - 110}" y="${a.y(0.3) + 16 * k}" fill="${COLORS[r.network]}">■ ${LABELS[r.network]}</text>`;
  });
  return svg(frame('MNIST test accuracy (Ioffe &amp; Szegedy 2015, Fig. 1a)', a, xMax, 0, 1, 'test accuracy') + lines.join(''));
}

/** Fig. 1(b, c): 15th, 50th, 85th percentiles of one last-hidden-layer sigmoid input, one panel per network. */
function percentileChart(run: RunResult, yMin: number, yMax: number): string {
  const points = run.checkpoints.slice(1);
  const xMax = Math.max(...points.map((c) => c.step));
  const a = axes(xMax, yMin, yMax);
  const line = (k: 0 | 1 | 2) => points.map((c) => `${a.x(c.step).toFixed(1)},${a.y(c.percentiles[k]).toFixed(1)}`).join(' ');
  const band = [...points.map((c) => `${a.x(c.step).toFixed(1)},${a.y(c.percentiles[2]).toFixed(1)}`), ...[...points].reverse().map((c) => `${a.x(c.step).toFixed(1)},${a.y(c.percentiles[0]).toFixed(1)}`)].join(' ');
  const color = COLORS[run.network];
  const body = `<polygon points="${band}" fill="${color}" opacity="0.25"/><polyline points="${line(0)}" fill="none" stroke="${color}"/><polyline points="${line(1)}" fill="none" stroke="${color}" stroke-width="2"/><polyline points="${line(2)}" fill="none" stroke="${color}"/>`;
  return svg(frame(`Sigmoid input, last hidden layer, ${LABELS[run.network]}: 15/50/85th percentiles`, a, xMax, yMin, yMax, 'sigmoid input') + body);
}

/** Both percentile panels on one y range, so their drift compares at a glance. */
export function percentileCharts(runs: readonly RunResult[]): string[] {
  const values = runs.flatMap((r) => r.checkpoints.slice(1).flatMap((c) => [...c.percentiles]));
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const margin = (hi - lo) * 0.05 || 1;
  return runs.map((r) => percentileChart(r, lo - margin, hi + margin));
}

/** PNG bytes of an SVG, through @resvg/resvg-js; null when that package is not installed. */
export async function toPng(svgText: string): Promise<Uint8Array | null> {
  try {
    const { Resvg } = await import('@resvg/resvg-js');
    return new Resvg(svgText, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, background: '#ffffff' }).render().asPng();
  } catch {
    return null;
  }
}
