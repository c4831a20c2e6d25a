// The explainer page: state from the URL, controls, graph, steps, checks, and the family picture.
import katex from 'katex';
import * as normkit from 'normkit';
import 'katex/dist/katex.min.css';
import './style.css';
import { byId, html } from './dom.ts';
import { renderFamily } from './family.ts';
import type { GraphEdge } from './graph.ts';
import { renderGraph } from './graph.ts';
import { short } from './format.ts';
import type { Model } from './model.ts';
import { computeModel } from './model.ts';
import type { PageGpu } from './gpu.ts';
import { gpuInputGrad, startGpu } from './gpu.ts';
import type { ClosedForm } from './panels.ts';
import { renderChecks, renderTwoInputNote } from './panels.ts';
import type { Params } from './params.ts';
import { MAX_N, MIN_N, defaultDy, defaultX, parseParams, toSearch } from './params.ts';
import { steps } from './steps.ts';

const parsed = parseParams(window.location.search);
let params: Params = parsed.params;
let model: Model = computeModel(params);
let stepIndex = -1;
let gpu: PageGpu | null = null;
let backend: ClosedForm['backend'] = 'js';
/** Bumped on every change, so a late webgpu answer for older values is dropped. */
let generation = 0;

const problems = byId('problems', HTMLElement);
const graph = byId('graph', HTMLElement);
const edgeInfo = byId('edge-info', HTMLElement);
const stepPanel = byId('steps', HTMLElement);
const controls = byId('controls', HTMLFormElement);

function showProblems(list: readonly string[]): void {
  problems.replaceChildren(...list.map((p) => html('li', {}, [p])));
  problems.hidden = list.length === 0;
}

function showEdge(edge: GraphEdge | null): void {
  edgeInfo.textContent = edge ? `${edge.formula} = ${short(edge.local)}` : 'Hover or focus an edge to see its local derivative.';
}

function renderStep(): void {
  const step = stepIndex >= 0 ? steps[stepIndex] : undefined;
  const active = new Set(step ? step.nodes(model) : []);
  for (const node of graph.querySelectorAll<SVGGElement>('[data-node]')) {
    const on = active.has(node.dataset.node ?? '');
    node.classList.toggle('active', on);
    node.dataset.active = String(on);
  }
  stepPanel.dataset.step = step?.id ?? 'forward';
  const title = byId('step-title', HTMLElement);
  const formula = byId('step-formula', HTMLElement);
  const note = byId('step-note', HTMLElement);
  byId('step-count', HTMLElement).textContent = step ? `Step ${stepIndex + 1} of ${steps.length}` : `Forward pass`;
  if (!step) {
    title.textContent = 'Forward: μ, σ², x̂ᵢ, yᵢ — press → or Next to walk the backward pass';
    katex.render(
      '\\mu=\\tfrac{1}{N}\\sum_i x_i,\\quad \\sigma^2=\\tfrac{1}{N}\\sum_i (x_i-\\mu)^2,\\quad \\hat{x}_i=\\frac{x_i-\\mu}{\\sqrt{\\sigma^2+\\epsilon}},\\quad y_i=\\gamma\\hat{x}_i+\\beta',
      formula,
      { displayMode: true, throwOnError: true },
    );
    note.textContent = `μ = ${short(model.ref.mu[0])}, σ² = ${short(model.ref.var[0])} (biased), L = Σ dyᵢ·yᵢ = ${short(model.loss)}.`;
    return;
  }
  title.textContent = step.title;
  katex.render(step.formula(model), formula, { displayMode: true, throwOnError: true });
  note.textContent = step.note(model);
}

/** The check panel on the chosen backend: js at once, webgpu once its download arrives. */
function renderCheckPanel(): void {
  const checks = byId('checks', HTMLElement);
  const current = ++generation;
  if (backend === 'js' || gpu === null) {
    checks.replaceChildren(renderChecks(model, { backend: 'js', label: 'js kernel, float64', dx: model.closedDx }));
    return;
  }
  const label = `webgpu kernel on ${gpu.adapter}, float32`;
  checks.replaceChildren(renderChecks(model, { backend: 'webgpu', label, dx: null }));
  const shown = model;
  gpuInputGrad(gpu.kernels, shown.params).then(
    (dx) => {
      if (current === generation) checks.replaceChildren(renderChecks(shown, { backend: 'webgpu', label, dx }));
    },
    (error: unknown) => {
      showProblems([`webgpu: ${error instanceof Error ? error.message : String(error)}`]);
    },
  );
}

function render(): void {
  graph.replaceChildren(renderGraph(model, showEdge));
  renderCheckPanel();
  byId('two-inputs', HTMLElement).replaceChildren(renderTwoInputNote(model));
  byId('n-value', HTMLElement).textContent = String(params.x.length);
  renderStep();
}

function field(name: string, label: string, value: number): HTMLElement {
  const input = html('input', { id: `in-${name}`, name, type: 'text', inputmode: 'decimal', value: String(value), 'aria-label': label, autocomplete: 'off' });
  return html('label', { class: 'field' }, [html('span', {}, [label]), input]);
}

function buildControls(): void {
  const n = params.x.length;
  const xs = Array.from({ length: n }, (_, i) => field(`x${i + 1}`, `x${i + 1}`, params.x[i]));
  const dys = Array.from({ length: n }, (_, i) => field(`dy${i + 1}`, `dL/dy${i + 1}`, params.dy[i]));
  byId('x-fields', HTMLElement).replaceChildren(...xs);
  byId('dy-fields', HTMLElement).replaceChildren(...dys);
  byId('scalar-fields', HTMLElement).replaceChildren(field('gamma', 'γ (gamma)', params.gamma), field('beta', 'β (beta)', params.beta), field('eps', 'ε (eps)', params.eps));
  byId('n-minus', HTMLButtonElement).disabled = n <= MIN_N;
  byId('n-plus', HTMLButtonElement).disabled = n >= MAX_N;
}

function update(next: Params): void {
  params = next;
  model = computeModel(params);
  window.history.replaceState(null, '', toSearch(params));
  render();
}

/** Reads every field; an invalid one is marked and reported, and the view keeps the last valid values. */
function readControls(): void {
  const errors: string[] = [];
  const read = (name: string, check: (v: number) => boolean, rule: string): number => {
    const input = byId(`in-${name}`, HTMLInputElement);
    const text = input.value;
    const value = text.trim() === '' ? Number.NaN : Number(text);
    const ok = Number.isFinite(value) && check(value);
    input.setAttribute('aria-invalid', String(!ok));
    if (!ok) errors.push(`${name}: '${text}' is not ${rule}`);
    return value;
  };
  const n = params.x.length;
  const x = Array.from({ length: n }, (_, i) => read(`x${i + 1}`, () => true, 'a number'));
  const dy = Array.from({ length: n }, (_, i) => read(`dy${i + 1}`, () => true, 'a number'));
  const gamma = read('gamma', () => true, 'a number');
  const beta = read('beta', () => true, 'a number');
  const eps = read('eps', (v) => v > 0, 'a number > 0');
  showProblems(errors);
  if (errors.length === 0) update({ x, dy, gamma, beta, eps });
}

function resize(n: number): void {
  const fill = (list: readonly number[], defaults: number[]) => Array.from({ length: n }, (_, i) => list[i] ?? defaults[i]);
  update({ ...params, x: fill(params.x, defaultX(n)), dy: fill(params.dy, defaultDy(n)) });
  buildControls();
}

function go(delta: number): void {
  stepIndex = Math.max(-1, Math.min(steps.length - 1, stepIndex + delta));
  renderStep();
}

controls.addEventListener('input', readControls);
controls.addEventListener('submit', (event) => {
  event.preventDefault();
});
byId('n-minus', HTMLButtonElement).addEventListener('click', () => {
  resize(params.x.length - 1);
});
byId('n-plus', HTMLButtonElement).addEventListener('click', () => {
  resize(params.x.length + 1);
});
byId('step-prev', HTMLButtonElement).addEventListener('click', () => {
  go(-1);
});
byId('step-next', HTMLButtonElement).addEventListener('click', () => {
  go(1);
});
document.addEventListener('keydown', (event) => {
  if (event.target instanceof HTMLInputElement) return;
  if (event.key === 'ArrowRight') go(1);
  else if (event.key === 'ArrowLeft') go(-1);
  else return;
  event.preventDefault();
});

showProblems(parsed.problems);
buildControls();
render();
showEdge(null);
renderFamily(byId('family', HTMLElement));

declare global {
  interface Window {
    normkit: typeof normkit;
  }
}
window.normkit = normkit;

/** Loads the wasm backend and, on a cross-origin-isolated page, its Web Worker threads; says what runs. */
async function startWasm(): Promise<void> {
  const status = byId('wasm-status', HTMLElement);
  let threads = 0;
  try {
    if (await normkit.wasmReady()) threads = crossOriginIsolated ? await normkit.startWasmWorkers(Math.min(navigator.hardwareConcurrency, 4)) : 1;
  } catch (error) {
    console.warn(error);
    threads = normkit.wasmAvailable() ? 1 : 0;
  }
  status.dataset.wasmThreads = String(threads);
  status.textContent = threads === 0 ? 'wasm backend: unavailable here (js backend in use)' : `wasm backend: SIMD on ${threads} thread${threads === 1 ? '' : 's'}`;
}
void startWasm();

/** Offers the backend switch when navigator.gpu gives an adapter. */
async function offerGpu(): Promise<void> {
  gpu = await startGpu();
  const select = byId('backend', HTMLSelectElement);
  select.closest('label')?.toggleAttribute('hidden', gpu === null);
  if (gpu === null) return;
  byId('backend-webgpu', HTMLOptionElement).textContent = `webgpu (float32, ${gpu.adapter})`;
  select.addEventListener('change', () => {
    backend = select.value === 'webgpu' ? 'webgpu' : 'js';
    renderCheckPanel();
  });
}
void offerGpu();
