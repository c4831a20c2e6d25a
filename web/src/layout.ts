// Where the graph's nodes go at a given width: layers top to bottom (x, statistics, x̂, γ β, y, L), each a
// row of grid columns that wraps into more bands when it is too long; edges that would cross a band run
// down the lanes between columns. Everything in CSS pixels, so node text keeps its size at every width.

export interface Box {
  readonly cx: number;
  readonly cy: number;
  readonly band: number;
}

export interface Geometry {
  readonly width: number;
  readonly height: number;
  readonly nodeW: number;
  readonly nodeH: number;
  readonly columns: number;
  /** Top and bottom of every band. */
  readonly bands: readonly (readonly [number, number])[];
  readonly boxes: ReadonlyMap<string, Box>;
  /** x of the lanes: before the first column, between columns, after the last. */
  readonly lanes: readonly number[];
}

const MIN_GAP = 12;
const GAP_Y = 46;
const MARGIN_Y = 10;

/** Grid columns for `count` nodes in a row of `columns`, spread evenly; `avoid` columns are skipped when there is room. */
function spread(count: number, columns: number, avoid: ReadonlySet<number> = new Set()): number[] {
  const free = Array.from({ length: columns }, (_, c) => c).filter((c) => !avoid.has(c));
  const pool = free.length >= count ? free : Array.from({ length: columns }, (_, c) => c);
  const picked: number[] = [];
  for (let j = 0; j < count; j++) {
    const target = ((j + 0.5) * columns) / count - 0.5;
    const best = pool.filter((c) => !picked.includes(c)).reduce((a, b) => (Math.abs(b - target) < Math.abs(a - target) ? b : a));
    picked.push(best);
  }
  return picked.sort((a, b) => a - b);
}

/**
 * Lays out `layers` (each a list of node ids; `shared` layers hold per-channel nodes placed off the per-sample
 * columns where they fit) in `width` pixels with nodes of `nodeW` x `nodeH`.
 */
export function layoutLayers(layers: readonly { ids: readonly string[]; shared: boolean }[], width: number, nodeW: number, nodeH: number): Geometry {
  const columns = Math.max(1, Math.floor((width - MIN_GAP) / (nodeW + MIN_GAP)));
  const gap = (width - columns * nodeW) / (columns + 1);
  const columnX = (c: number) => gap + c * (nodeW + gap) + nodeW / 2;
  const lanes = Array.from({ length: columns + 1 }, (_, k) => gap / 2 + k * (nodeW + gap));
  const perSample = new Set<number>();
  for (const layer of layers) if (!layer.shared && layer.ids.length <= columns) for (const c of spread(layer.ids.length, columns)) perSample.add(c);
  const boxes = new Map<string, Box>();
  const bands: [number, number][] = [];
  let top = MARGIN_Y;
  for (const layer of layers) {
    for (let start = 0; start < layer.ids.length; start += columns) {
      const ids = layer.ids.slice(start, start + columns);
      const band = bands.length;
      bands.push([top, top + nodeH]);
      const cy = top + nodeH / 2;
      if (ids.length === 1) boxes.set(ids[0], { cx: width / 2, cy, band });
      else spread(ids.length, columns, layer.shared ? perSample : new Set()).forEach((c, j) => boxes.set(ids[j], { cx: columnX(c), cy, band }));
      top += nodeH + GAP_Y;
    }
  }
  return { width, height: top - GAP_Y + MARGIN_Y, nodeW, nodeH, columns, bands, boxes, lanes };
}

/** An SVG path from node a to node b: a curve between neighbouring bands, a line within a band, else down a lane. */
export function edgePath(g: Geometry, a: Box, b: Box): string {
  const half = g.nodeW / 2;
  if (a.band === b.band) {
    const [x1, x2] = a.cx < b.cx ? [a.cx + half, b.cx - half] : [a.cx - half, b.cx + half];
    return `M ${x1} ${a.cy} L ${x2} ${b.cy}`;
  }
  const y1 = a.cy + g.nodeH / 2;
  const y2 = b.cy - g.nodeH / 2;
  const crossed = g.bands.slice(a.band + 1, b.band);
  const [lo, hi] = [Math.min(a.cx, b.cx) - half - 4, Math.max(a.cx, b.cx) + half + 4];
  const blocked = [...g.boxes.values()].some((box) => box.band > a.band && box.band < b.band && box.cx + half > lo && box.cx - half < hi);
  if (crossed.length === 0 || !blocked) {
    const mid = (y1 + y2) / 2;
    return `M ${a.cx} ${y1} C ${a.cx} ${mid}, ${b.cx} ${mid}, ${b.cx} ${y2}`;
  }
  // the lane nearest to both ends; the corners sit in the gaps below a and above b
  const lane = g.lanes.reduce((best, x) => (Math.abs(x - a.cx) + Math.abs(x - b.cx) < Math.abs(best - a.cx) + Math.abs(best - b.cx) ? x : best));
  const below = y1 + GAP_Y / 2;
  const above = y2 - GAP_Y / 2;
  return `M ${a.cx} ${y1} C ${a.cx} ${below}, ${lane} ${y1}, ${lane} ${below} L ${lane} ${above} C ${lane} ${y2}, ${b.cx} ${above}, ${b.cx} ${y2}`;
}
