// The derivation's computation graph as SVG at the container's width in CSS pixels: every node shows its
// forward value and ∂L/∂(node); every edge carries its local derivative, shown on hover, focus or tap.
import { svg } from './dom.ts';
import { short, sub } from './format.ts';
import { t } from './i18n/index.ts';
import { edgePath, layoutLayers } from './layout.ts';
import type { Model } from './model.ts';

export interface GraphNode {
  readonly id: string;
  readonly label: string;
  readonly value: number;
  readonly grad: number;
}

export interface GraphEdge {
  readonly from: string;
  readonly to: string;
  /** The local derivative d(to)/d(from), as a formula and its value. */
  readonly formula: string;
  readonly local: number;
}

const VALUE_PX = 14;
const GRAD_PX = 13;
const PAD_X = 10;
const LINE = GRAD_PX + 6;

/** Nodes and edges of the graph for the model's N inputs, and its layers from inputs to loss. */
function graphOf(m: Model): { nodes: GraphNode[]; edges: GraphEdge[]; layers: { ids: string[]; shared: boolean }[] } {
  const { n, ref, params } = m;
  const mu = ref.mu[0];
  const std = Math.sqrt(ref.var[0] + params.eps);
  const each = Array.from({ length: n }, (_, i) => i);
  const nodes: GraphNode[] = [
    ...each.map((i) => ({ id: `x${i + 1}`, label: `x${sub(i + 1)}`, value: params.x[i], grad: ref.dx[i] })),
    { id: 'mu', label: 'μ', value: mu, grad: ref.dmu[0] },
    { id: 'var', label: 'σ²', value: ref.var[0], grad: ref.dvar[0] },
    ...each.map((i) => ({ id: `xhat${i + 1}`, label: `x̂${sub(i + 1)}`, value: ref.xhat[i], grad: ref.dxhat[i] })),
    { id: 'gamma', label: 'γ', value: params.gamma, grad: ref.dgamma[0] },
    { id: 'beta', label: 'β', value: params.beta, grad: ref.dbeta[0] },
    ...each.map((i) => ({ id: `y${i + 1}`, label: `y${sub(i + 1)}`, value: ref.y[i], grad: params.dy[i] })),
    { id: 'L', label: 'L', value: m.loss, grad: 1 },
  ];
  const ids = (prefix: string) => each.map((i) => `${prefix}${i + 1}`);
  const layers = [
    { ids: ids('x'), shared: false },
    { ids: ['mu', 'var'], shared: true },
    { ids: ids('xhat'), shared: false },
    { ids: ['gamma', 'beta'], shared: true },
    { ids: ids('y'), shared: false },
    { ids: ['L'], shared: true },
  ];
  const centered = params.x.reduce((s, v) => s + (v - mu), 0);
  const edges: GraphEdge[] = [{ from: 'mu', to: 'var', formula: '∂σ²/∂μ = −2Σ(xᵢ − μ)/N', local: (-2 * centered) / n }];
  for (const i of each) {
    const k = sub(i + 1);
    const d = params.x[i] - mu;
    edges.push(
      { from: `x${i + 1}`, to: 'mu', formula: `∂μ/∂x${k} = 1/N`, local: 1 / n },
      { from: `x${i + 1}`, to: 'var', formula: `∂σ²/∂x${k} = 2(x${k} − μ)/N`, local: (2 * d) / n },
      { from: `x${i + 1}`, to: `xhat${i + 1}`, formula: `∂x̂${k}/∂x${k} = 1/√(σ² + ε)`, local: 1 / std },
      { from: 'mu', to: `xhat${i + 1}`, formula: `∂x̂${k}/∂μ = −1/√(σ² + ε)`, local: -1 / std },
      { from: 'var', to: `xhat${i + 1}`, formula: `∂x̂${k}/∂σ² = −(x${k} − μ)(σ² + ε)^(−3/2)/2`, local: (-d * std ** -3) / 2 },
      { from: `xhat${i + 1}`, to: `y${i + 1}`, formula: `∂y${k}/∂x̂${k} = γ`, local: params.gamma },
      { from: 'gamma', to: `y${i + 1}`, formula: `∂y${k}/∂γ = x̂${k}`, local: ref.xhat[i] },
      { from: 'beta', to: `y${i + 1}`, formula: `∂y${k}/∂β = 1`, local: 1 },
      { from: `y${i + 1}`, to: 'L', formula: `∂L/∂y${k} = dy${k} (L = Σ dyᵢ·yᵢ)`, local: params.dy[i] },
    );
  }
  return { nodes, edges, layers };
}

/** The lines a node shows: its value, and its gradient on one line or, where width is short, two. */
function nodeLines(node: GraphNode, split: boolean): { value: string; grad: string[] } {
  const value = `${node.label} = ${short(node.value)}`;
  const grad = `∂L/∂${node.label} = ${short(node.grad)}`;
  return { value, grad: split ? [`∂L/∂${node.label} =`, short(node.grad)] : [grad] };
}

/** Node size for the given text mode, from the widths of its text in the page's font. */
function nodeSize(nodes: readonly GraphNode[], split: boolean, measure: (text: string, px: number) => number): { w: number; h: number } {
  let widest = 0;
  for (const node of nodes) {
    const lines = nodeLines(node, split);
    widest = Math.max(widest, measure(lines.value, VALUE_PX), ...lines.grad.map((line) => measure(line, GRAD_PX)));
  }
  return { w: Math.ceil(widest + 2 * PAD_X), h: 12 + VALUE_PX + (split ? 2 : 1) * LINE + 5 };
}


function measurer(font: string): (text: string, px: number) => number {
  const context = document.createElement('canvas').getContext('2d');
  return (text, px) => {
    if (context === null) return text.length * px * 0.62;
    context.font = `${px}px ${font}`;
    return context.measureText(text).width;
  };
}

/** Draws the graph `width` pixels wide; `onEdge` is told which edge is hovered, focused or tapped (null when none). */
export function renderGraph(m: Model, width: number, font: string, onEdge: (edge: GraphEdge | null) => void): SVGSVGElement {
  const { nodes, edges, layers } = graphOf(m);
  const measure = measurer(font);
  // two nodes side by side where one-line gradients allow it; else gradients on two lines
  const wide = nodeSize(nodes, false, measure);
  const split = Math.floor((width - 12) / (wide.w + 12)) < 2;
  const size = split ? nodeSize(nodes, true, measure) : wide;
  const geometry = layoutLayers(layers, width, Math.min(size.w, width - 24), size.h);
  const root = svg('svg', {
    width: geometry.width,
    height: geometry.height,
    viewBox: `0 0 ${geometry.width} ${geometry.height}`,
    role: 'group',
    'aria-label': t('graph.label', { count: m.n }),
    class: 'graph',
    'data-layout': split ? 'narrow' : 'wide',
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
    const a = geometry.boxes.get(edge.from);
    const b = geometry.boxes.get(edge.to);
    if (!a || !b) continue;
    const path = edgePath(geometry, a, b);
    const label = `${edge.formula} = ${short(edge.local)}`;
    const group = svg('g', { class: 'edge', tabindex: 0, role: 'button', 'data-edge': `${edge.from}->${edge.to}`, 'data-local': String(edge.local), 'aria-label': label }, [
      svg('path', { d: path, class: 'edge-hit' }),
      svg('path', { d: path, class: 'edge-line', 'marker-end': 'url(#arrow)' }),
    ]);
    const show = () => {
      for (const other of edgeLayer.querySelectorAll('.edge.selected')) other.classList.remove('selected');
      group.classList.add('selected');
      onEdge(edge);
    };
    group.addEventListener('mouseenter', show);
    group.addEventListener('focus', show);
    group.addEventListener('click', show);
    group.addEventListener('mouseleave', () => {
      if (document.activeElement !== group) onEdge(null);
    });
    group.addEventListener('blur', () => {
      group.classList.remove('selected');
    });
    edgeLayer.append(group);
  }
  const nodeLayer = svg('g', { class: 'nodes' });
  const { nodeW, nodeH } = geometry;
  for (const node of nodes) {
    const box = geometry.boxes.get(node.id);
    if (!box) continue;
    const text = nodeLines(node, split);
    const gradText = svg('text', { x: nodeW / 2, y: 8 + VALUE_PX + LINE, class: 'node-grad' });
    gradText.append(...text.grad.map((line, k) => svg('tspan', { x: nodeW / 2, dy: k === 0 ? 0 : LINE }, [k === 0 ? line : ` ${line}`])));
    nodeLayer.append(
      svg(
        'g',
        {
          class: `node node-${node.id.replace(/\d+$/, '')}`,
          tabindex: 0,
          role: 'img',
          'data-node': node.id,
          'data-value': String(node.value),
          'data-grad': String(node.grad),
          'aria-label': t('graph.node', { value: text.value, grad: text.grad.join(' ') }),
          transform: `translate(${box.cx - nodeW / 2} ${box.cy - nodeH / 2})`,
        },
        [svg('rect', { width: nodeW, height: nodeH, rx: 10 }), svg('text', { x: nodeW / 2, y: 8 + VALUE_PX, class: 'node-value' }, [text.value]), gradText],
      ),
    );
  }
  root.append(edgeLayer, nodeLayer);
  return root;
}
