// Which elements each norm reduces over (Wu & He 2018, Fig. 2): an N x C x (H·W) block per norm, colored
// from the same views the kernels use (layer.viewOf + statsIndexOf), not from a second description.
import type { Normalization } from 'normkit';
import { BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, statsIndexOf } from 'normkit';
import { html, svg } from './dom.ts';

const SHAPE = [3, 6, 2, 2];
const [N, C, H, W] = SHAPE;
const P = H * W;
const CELL = 13;
const GAP = 5;

interface Panel {
  readonly name: string;
  readonly caption: string;
  readonly layer: Normalization;
}

const panels: readonly Panel[] = [
  { name: 'BatchNorm', caption: 'per channel, over the batch and H·W', layer: new BatchNorm2d(C) },
  { name: 'LayerNorm', caption: 'per sample, over C and H·W', layer: new LayerNorm([C, H, W]) },
  { name: 'InstanceNorm', caption: 'per sample and channel, over H·W', layer: new InstanceNorm2d(C) },
  { name: 'GroupNorm', caption: 'per sample and group of C/G channels (G = 2), over H·W', layer: new GroupNorm(2, C) },
];

/** Draws the four blocks; clicking an element highlights every element that shares its statistics. */
export function renderFamily(container: HTMLElement): void {
  let selected = 0;
  const draw = () => {
    container.replaceChildren(
      ...panels.map((panel) => {
        const view = panel.layer.viewOf(SHAPE);
        const group = statsIndexOf(view, selected);
        const width = C * (P * CELL + GAP);
        const height = N * (CELL + GAP) + 18;
        const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'family-block', role: 'img', 'aria-label': `${panel.name}: ${panel.caption}` });
        for (let i = 0; i < N * C * P; i++) {
          const n = Math.floor(i / (C * P));
          const c = Math.floor(i / P) % C;
          const s = i % P;
          const same = statsIndexOf(view, i) === group;
          const rect = svg('rect', {
            x: c * (P * CELL + GAP) + s * CELL,
            y: n * (CELL + GAP),
            width: CELL - 1,
            height: CELL,
            class: same ? 'member' : 'other',
            'data-index': i,
            'data-group': statsIndexOf(view, i),
          });
          rect.addEventListener('click', () => {
            selected = i;
            draw();
          });
          root.append(rect);
        }
        root.append(svg('text', { x: 0, y: height - 3, class: 'axis' }, ['rows: N samples · columns: C channels, each H·W wide']));
        return html('figure', { class: 'family', 'data-family': panel.name }, [root, html('figcaption', {}, [html('strong', {}, [panel.name]), ` — ${panel.caption}`])]);
      }),
    );
  };
  draw();
}
