/// <reference types="vite/client" />
// Which elements each norm reduces over (Wu & He 2018, Fig. 2): an N x C x (H·W) block per norm, colored
// from the same views the kernels use (layer.viewOf + statsIndexOf), not from a second description.
import type { Normalization } from 'normkit';
import { BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, statsIndexOf } from 'normkit';
import { html, svg } from './dom.ts';
import { rich, t } from './i18n/index.ts';

const SHAPE = [3, 6, 2, 2];
const [N, C, H, W] = SHAPE;
const P = H * W;
const CELL = 13;
const GAP = 5;

interface Panel {
  readonly name: string;
  readonly caption: 'batch' | 'layer' | 'instance' | 'group';
  readonly layer: Normalization;
}

const panels: readonly Panel[] = [
  { name: 'BatchNorm', caption: 'batch', layer: new BatchNorm2d(C) },
  { name: 'LayerNorm', caption: 'layer', layer: new LayerNorm([C, H, W]) },
  { name: 'InstanceNorm', caption: 'instance', layer: new InstanceNorm2d(C) },
  { name: 'GroupNorm', caption: 'group', layer: new GroupNorm(2, C) },
];

/** The element an arrow key moves the selection to: ← → along a row of H·W·C, ↑ ↓ across samples. */
function moved(selected: number, key: string): number | null {
  const step: Record<string, number> = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -C * P, ArrowDown: C * P };
  if (!(key in step)) return null;
  return (selected + step[key] + N * C * P) % (N * C * P);
}

/** Draws the four blocks; clicking or tapping an element, or the arrow keys on a focused block, select an element and highlight every element that shares its statistics. */
export function renderFamily(container: HTMLElement): void {
  let selected = 0;
  const draw = (focus: number | null = null) => {
    const figures = panels.map((panel, k) => {
      const view = panel.layer.viewOf(SHAPE);
      const group = statsIndexOf(view, selected);
      const width = C * (P * CELL + GAP) - GAP;
      const height = N * (CELL + GAP) - GAP;
      const root = svg('svg', {
        viewBox: `0 0 ${width} ${height}`,
        class: 'family-block',
        role: 'img',
        tabindex: 0,
        'data-selected': selected,
        'aria-label': `${panel.name}: ${t(`family.${panel.caption}`)}. ${t('family.keys')}`,
      });
      root.addEventListener('keydown', (event) => {
        const next = moved(selected, event.key);
        if (next === null) return;
        event.preventDefault();
        selected = next;
        draw(k);
      });
      for (let i = 0; i < N * C * P; i++) {
        const n = Math.floor(i / (C * P));
        const c = Math.floor(i / P) % C;
        const s = i % P;
        const rect = svg('rect', {
          x: c * (P * CELL + GAP) + s * CELL,
          y: n * (CELL + GAP),
          width: CELL - 1,
          height: CELL,
          class: statsIndexOf(view, i) === group ? 'member' : 'other',
          'data-index': i,
          'data-group': statsIndexOf(view, i),
        });
        rect.addEventListener('click', () => {
          selected = i;
          draw();
        });
        root.append(rect);
      }
      const name = html('strong', { translate: 'no' }, [panel.name]);
      return html('figure', { class: 'family', 'data-family': panel.name }, [root, html('figcaption', {}, [name, ' — ', ...rich(`family.${panel.caption}`)])]);
    });
    container.replaceChildren(html('div', { class: 'family-grid' }, figures), html('p', { class: 'family-axis' }, rich('family.axis')));
    if (focus !== null) [...container.querySelectorAll<SVGSVGElement>('svg.family-block')].at(focus)?.focus();
  };
  draw();
}
