// The check panel (dL/dx three ways) and the two-input note. Tables carry a label per cell that shows
// only where a narrow screen stacks the table into one card per row.
import { html } from './dom.ts';
import { short } from './format.ts';
import { rich } from './i18n/index.ts';
import type { Model } from './model.ts';

/** A table whose cells repeat their column's heading for the stacked (narrow) layout. */
export function stackingTable(headings: readonly Node[][], rows: readonly { attrs: Record<string, string>; cells: { text: string; attrs?: Record<string, string>; heading?: boolean }[] }[], attrs: { readonly class: string } & Record<string, string>): HTMLTableElement {
  const head = html('tr', {}, headings.map((h) => html('th', { scope: 'col' }, h)));
  const body = rows.map((row) =>
    html(
      'tr',
      row.attrs,
      row.cells.map((c, k) => {
        const label = html('span', { class: 'cell-label', 'aria-hidden': 'true' }, headings[k].map((node) => node.cloneNode(true)));
        const value = html('span', { class: 'cell-value' }, [c.text]);
        return c.heading === true ? html('th', { scope: 'row', ...c.attrs }, [label, value]) : html('td', c.attrs ?? {}, [label, value]);
      }),
    ),
  );
  return html('table', { ...attrs, class: `stack ${attrs.class}` }, [html('thead', {}, [head]), html('tbody', {}, body)]);
}

/** The closed form's dL/dx and which kernel gave it (js in float64; webgpu in float32, null while it runs). */
export interface ClosedForm {
  readonly backend: 'js' | 'webgpu';
  /** The kernel's name, marked (see i18n `marked`). */
  readonly label: string;
  readonly dx: Float64Array | null;
}

/** dL/dx by the chain rule (reference), the closed form (js or webgpu kernel) and central differences (gradcheck). */
export function renderChecks(m: Model, closed: ClosedForm): HTMLElement {
  const headings: Node[][] = [
    rich('checks.quantity'),
    rich('checks.chain'),
    rich('checks.closed', { label: closed.label }),
    rich('checks.fd'),
    rich('checks.chainClosed'),
    rich('checks.chainFd'),
  ];
  const rows = Array.from({ length: m.n }, (_, i) => {
    const ref = m.ref.dx[i];
    const mine = closed.dx?.[i];
    return {
      attrs: { 'data-check': `x${i + 1}` },
      cells: [
        { text: `∂L/∂x${i + 1}`, heading: true },
        { text: short(ref), attrs: { 'data-ref': String(ref) } },
        mine === undefined ? { text: '…' } : { text: short(mine), attrs: { 'data-closed': String(mine) } },
        { text: short(m.numericDx[i]), attrs: { 'data-fd': String(m.numericDx[i]) } },
        { text: mine === undefined ? '…' : short(Math.abs(ref - mine)) },
        { text: short(Math.abs(ref - m.numericDx[i])) },
      ],
    };
  });
  const param = (name: string, ref: number, fd: number) => ({
    attrs: {},
    cells: [{ text: `∂L/∂${name}`, heading: true }, { text: short(ref) }, { text: '—' }, { text: short(fd) }, { text: '—' }, { text: short(Math.abs(ref - fd)) }],
  });
  const table = stackingTable(headings, [...rows, param('γ', m.ref.dgamma[0], m.numericDgamma), param('β', m.ref.dbeta[0], m.numericDbeta)], {
    class: 'checks',
    'data-backend': closed.backend,
    'data-ready': String(closed.dx !== null),
  });
  const verdict = html('p', { class: m.gradcheckOk ? 'ok' : 'bad', 'data-gradcheck': m.gradcheckOk ? 'pass' : 'fail' }, rich(m.gradcheckOk ? 'checks.pass' : 'checks.fail'));
  return html('div', {}, [table, verdict]);
}

/** With two inputs xhat = ±sqrt(var/(var+eps)) whatever x is, so dL/dx nearly vanishes. */
export function renderTwoInputNote(m: Model): HTMLElement {
  const magnitude = Math.sqrt(m.ref.var[0] / (m.ref.var[0] + m.params.eps));
  const max = short(Math.max(...Array.from(m.ref.dx, Math.abs)));
  if (m.n !== 2) return html('p', {}, [...rich('two.why'), ' ', ...rich('two.other', { n: m.n, max })]);
  return html('p', { 'data-two-inputs': 'true' }, [
    ...rich('two.why'),
    ' ',
    ...rich('two.here', { magnitude: magnitude.toPrecision(10), xhat1: short(m.ref.xhat[0]), xhat2: short(m.ref.xhat[1]), max }),
  ]);
}
