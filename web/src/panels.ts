// The check panel (dL/dx three ways) and the two-input note.
import { html } from './dom.ts';
import { short } from './format.ts';
import type { Model } from './model.ts';

function cell(text: string, attrs: Record<string, string> = {}): HTMLTableCellElement {
  return html('td', attrs, [text]);
}

/** The closed form's dL/dx and which kernel gave it (js in float64; webgpu in float32, null while it runs). */
export interface ClosedForm {
  readonly backend: 'js' | 'webgpu';
  readonly label: string;
  readonly dx: Float64Array | null;
}

/** dL/dx by the chain rule (reference), the closed form (js or webgpu kernel) and central differences (gradcheck). */
export function renderChecks(m: Model, closed: ClosedForm): HTMLElement {
  const head = html('tr', {}, ['', 'chain rule (reference)', `closed form (${closed.label})`, 'finite differences', '|ref − closed|', '|ref − fd|'].map((t) => html('th', { scope: 'col' }, [t])));
  const rows = Array.from({ length: m.n }, (_, i) => {
    const ref = m.ref.dx[i];
    const mine = closed.dx?.[i];
    return html('tr', { 'data-check': `x${i + 1}` }, [
      html('th', { scope: 'row' }, [`∂L/∂x${i + 1}`]),
      cell(short(ref), { 'data-ref': String(ref) }),
      mine === undefined ? cell('…') : cell(short(mine), { 'data-closed': String(mine) }),
      cell(short(m.numericDx[i]), { 'data-fd': String(m.numericDx[i]) }),
      cell(mine === undefined ? '…' : short(Math.abs(ref - mine))),
      cell(short(Math.abs(ref - m.numericDx[i]))),
    ]);
  });
  const param = (name: string, ref: number, fd: number) =>
    html('tr', {}, [html('th', { scope: 'row' }, [`∂L/∂${name}`]), cell(short(ref)), cell('—'), cell(short(fd)), cell('—'), cell(short(Math.abs(ref - fd)))]);
  const table = html('table', { class: 'checks', 'data-backend': closed.backend, 'data-ready': String(closed.dx !== null) }, [
    html('thead', {}, [head]),
    html('tbody', {}, [...rows, param('γ', m.ref.dgamma[0], m.numericDgamma), param('β', m.ref.dbeta[0], m.numericDbeta)]),
  ]);
  const verdict = html('p', { class: m.gradcheckOk ? 'ok' : 'bad', 'data-gradcheck': m.gradcheckOk ? 'pass' : 'fail' }, [
    m.gradcheckOk
      ? 'gradcheck passes: every analytical gradient is within atol 1e-5 + rtol 1e-3 of the central differences (eps 1e-6).'
      : 'gradcheck FAILS for these values (central differences in float64, eps 1e-6, atol 1e-5, rtol 1e-3).',
  ]);
  return html('div', {}, [html('div', { class: 'scroll' }, [table]), verdict]);
}

/** With two inputs xhat = ±sqrt(var/(var+eps)) whatever x is, so dL/dx nearly vanishes. */
export function renderTwoInputNote(m: Model): HTMLElement {
  const magnitude = Math.sqrt(m.ref.var[0] / (m.ref.var[0] + m.params.eps));
  const maxDx = Math.max(...Array.from(m.ref.dx, Math.abs));
  const why =
    'With two inputs, x̂₁ = −x̂₂ = ±(x₁ − x₂)/|x₁ − x₂|·√(σ²/(σ² + ε)): the normalized values are ±1 up to ε whatever x is, so y hardly depends on x and dL/dx nearly vanishes — only ε keeps it from exactly zero.';
  if (m.n !== 2) {
    return html('p', {}, [why, ` Set N = 2 to see it; with N = ${m.n}, max |∂L/∂xᵢ| = ${short(maxDx)}.`]);
  }
  return html('p', { 'data-two-inputs': 'true' }, [
    why,
    ` Here √(σ²/(σ² + ε)) = ${magnitude.toPrecision(10)}, x̂ = (${short(m.ref.xhat[0])}, ${short(m.ref.xhat[1])}), and max |∂L/∂xᵢ| = ${short(maxDx)}.`,
  ]);
}
