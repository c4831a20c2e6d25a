// The derivation's computation graph as SVG: every node shows its forward value and dL/d(node);
// every edge carries its local derivative, shown on hover or focus.
import { svg } from './dom.ts';
import { short, sub } from './format.ts';
import type { Model } from './model.ts';

export interface GraphNode {
  readonly id: string;
  readonly label: string;
  readonly value: number;
  readonly grad: number;
  readonly cx: number;
  readonly cy: number;
}

export interface GraphEdge {
  readonly from: string;
  readonly to: string;
  /** The local derivative d(to)/d(from), as a formula and its value. */
  readonly formula: string;
  readonly local: number;
}

const WIDTH = 980;
const NODE_W = 132;
const NODE_H = 48;
const ROW = 66;
const COLUMNS = { x: 75, stats: 265, xhat: 460, params: 630, y: 775, loss: 905 } as const;

export function graphHeight(n: number): number {
  return Math.max(380, 90 + (n - 1) * ROW + NODE_H);
}

/** Nodes and edges of the graph for the model's N inputs, laid out in columns (inputs to loss). */
export function layoutGraph(m: Model): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const { n, ref, params } = m;
  const height = graphHeight(n);
  const rowY = (i: number) => height / 2 + (i - (n - 1) / 2) * ROW;
  const mid = height / 2;
  const mu = ref.mu[0];
  const variance = ref.var[0];
  const std = Math.sqrt(variance + params.eps);
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  for (let i = 0; i < n; i++) {
    const k = i + 1;
    nodes.push({ id: `x${k}`, label: `x${sub(k)}`, value: params.x[i], grad: ref.dx[i], cx: COLUMNS.x, cy: rowY(i) });
    nodes.push({ id: `xhat${k}`, label: `x̂${sub(k)}`, value: ref.xhat[i], grad: ref.dxhat[i], cx: COLUMNS.xhat, cy: rowY(i) });
    nodes.push({ id: `y${k}`, label: `y${sub(k)}`, value: ref.y[i], grad: params.dy[i], cx: COLUMNS.y, cy: rowY(i) });
  }
  nodes.push({ id: 'mu', label: 'μ', value: mu, grad: ref.dmu[0], cx: COLUMNS.stats, cy: mid - 70 });
  nodes.push({ id: 'var', label: 'σ²', value: variance, grad: ref.dvar[0], cx: COLUMNS.stats, cy: mid + 70 });
  nodes.push({ id: 'gamma', label: 'γ', value: params.gamma, grad: ref.dgamma[0], cx: COLUMNS.params, cy: 40 });
  nodes.push({ id: 'beta', label: 'β', value: params.beta, grad: ref.dbeta[0], cx: COLUMNS.params, cy: height - 40 });
  nodes.push({ id: 'L', label: 'L', value: m.loss, grad: 1, cx: COLUMNS.loss, cy: mid });
  const centered = params.x.reduce((s, v) => s + (v - mu), 0);
  edges.push({ from: 'mu', to: 'var', formula: '∂σ²/∂μ = −2Σ(xᵢ − μ)/N', local: (-2 * centered) / n });
  for (let i = 0; i < n; i++) {
    const k = i + 1;
    const d = params.x[i] - mu;
    edges.push({ from: `x${k}`, to: 'mu', formula: `∂μ/∂x${sub(k)} = 1/N`, local: 1 / n });
    edges.push({ from: `x${k}`, to: 'var', formula: `∂σ²/∂x${sub(k)} = 2(x${sub(k)} − μ)/N`, local: (2 * d) / n });
    edges.push({ from: `x${k}`, to: `xhat${k}`, formula: `∂x̂${sub(k)}/∂x${sub(k)} = 1/√(σ² + ε)`, local: 1 / std });
    edges.push({ from: 'mu', to: `xhat${k}`, formula: `∂x̂${sub(k)}/∂μ = −1/√(σ² + ε)`, local: -1 / std });
    edges.push({ from: 'var', to: `xhat${k}`, formula: `∂x̂${sub(k)}/∂σ² = −(x${sub(k)} − μ)(σ² + ε)^(−3/2)/2`, local: (-d * std ** -3) / 2 });
    edges.push({ from: `xhat${k}`, to: `y${k}`, formula: `∂y${sub(k)}/∂x̂${sub(k)} = γ`, local: params.gamma });
    edges.push({ from: 'gamma', to: `y${k}`, formula: `∂y${sub(k)}/∂γ = x̂${sub(k)}`, local: ref.xhat[i] });
    edges.push({ from: 'beta', to: `y${k}`, formula: `∂y${sub(k)}/∂β = 1`, local: 1 });
    edges.push({ from: `y${k}`, to: 'L', formula: `∂L/∂y${sub(k)} = dy${sub(k)} (L = Σ dyᵢ·yᵢ)`, local: params.dy[i] });
  }
  return { nodes, edges };
}

/** Draws the graph; `onEdge` is told which edge is hovered or focused (null when none). */
export function renderGraph(m: Model, onEdge: (edge: GraphEdge | null) => void): SVGSVGElement {
  const { nodes, edges } = layoutGraph(m);
  const height = graphHeight(m.n);
  const at = new Map(nodes.map((node) => [node.id, node]));
  const root = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${height}`,
    role: 'img',
    'aria-label': `Batch normalization computation graph with ${m.n} inputs`,
    class: 'graph',
  });
  root.append(
    svg('defs', {}, [
      svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, [
        svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }),
      ]),
    ]),
  );
  const edgeLayer = svg('g', { class: 'edges' });
  for (const edge of edges) {
    const a = at.get(edge.from);
    const b = at.get(edge.to);
    if (!a || !b) continue;
    const x1 = a.cx + NODE_W / 2;
    const x2 = b.cx - NODE_W / 2;
    const sameColumn = Math.abs(a.cx - b.cx) < 1;
    const path = sameColumn
      ? `M ${a.cx} ${a.cy + NODE_H / 2} L ${b.cx} ${b.cy - NODE_H / 2}`
      : `M ${x1} ${a.cy} C ${(x1 + x2) / 2} ${a.cy}, ${(x1 + x2) / 2} ${b.cy}, ${x2} ${b.cy}`;
    const label = `${edge.formula} = ${short(edge.local)}`;
    const group = svg(
      'g',
      { class: 'edge', tabindex: 0, 'data-edge': `${edge.from}->${edge.to}`, 'data-local': String(edge.local), 'aria-label': label },
      [svg('title', {}, [label]), svg('path', { d: path, class: 'edge-hit' }), svg('path', { d: path, class: 'edge-line', 'marker-end': 'url(#arrow)' })],
    );
    const show = () => {
      onEdge(edge);
    };
    const hide = () => {
      onEdge(null);
    };
    group.addEventListener('mouseenter', show);
    group.addEventListener('focus', show);
    group.addEventListener('mouseleave', hide);
    group.addEventListener('blur', hide);
    edgeLayer.append(group);
  }
  const nodeLayer = svg('g', { class: 'nodes' });
  for (const node of nodes) {
    const valueText = `${node.label} = ${short(node.value)}`;
    const gradText = `∂L/∂${node.label} = ${short(node.grad)}`;
    nodeLayer.append(
      svg(
        'g',
        {
          class: `node node-${node.id.replace(/\d+$/, '')}`,
          tabindex: 0,
          'data-node': node.id,
          'data-value': String(node.value),
          'data-grad': String(node.grad),
          'aria-label': `${valueText}, ${gradText}`,
          transform: `translate(${node.cx - NODE_W / 2} ${node.cy - NODE_H / 2})`,
        },
        [
          svg('rect', { width: NODE_W, height: NODE_H, rx: 10 }),
          svg('text', { x: NODE_W / 2, y: 19, class: 'node-value' }, [valueText]),
          svg('text', { x: NODE_W / 2, y: 37, class: 'node-grad' }, [gradText]),
        ],
      ),
    );
  }
  root.append(edgeLayer, nodeLayer);
  return root;
}
