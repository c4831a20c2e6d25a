/**
 * Charts for the CLI (the demo's and the benchmark's): a Vega-Lite spec compiled by vega-lite, drawn as SVG by
 * vega's headless View, and as PNG by resvg. Loaded on first use, so commands without charts never load them.
 */
import type { TopLevelSpec } from 'vega-lite';

/** Fonts and colours every chart shares; DejaVu Sans is what resvg finds on a plain Linux. */
export const chartConfig = {
  font: 'DejaVu Sans',
  background: '#ffffff',
  title: { fontSize: 14, anchor: 'start' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e9ef' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
} as const;

/** The SVG text of a Vega-Lite spec. */
export async function toSvg(spec: TopLevelSpec): Promise<string> {
  const [{ compile }, { parse, View }] = await Promise.all([import('vega-lite'), import('vega')]);
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return `${await view.toSVG()}\n`;
  } finally {
    view.finalize();
  }
}

/** PNG bytes of an SVG, at twice its size. */
export async function toPng(svg: string): Promise<Uint8Array> {
  const { Resvg } = await import('@resvg/resvg-js');
  const resvg = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, fitTo: { mode: 'zoom', value: 2 } });
  return resvg.render().asPng();
}
