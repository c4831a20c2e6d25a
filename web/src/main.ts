// The explainer page: state from the URL, controls, graph, steps, checks, the training view and the family
// picture, in the reader's language; every text is re-rendered when the language or the width changes.
import katex from 'katex';
import * as normkit from 'normkit';
import 'katex/dist/katex.min.css';
import './style.css';
import { byId, html } from './dom.ts';
import { renderFamily } from './family.ts';
import { sub, short } from './format.ts';
import type { GpuStart, PageGpu } from './gpu.ts';
import { gpuInputGrad, startGpu } from './gpu.ts';
import type { GraphEdge } from './graph.ts';
import { renderGraph } from './graph.ts';
import type { Language } from './i18n/index.ts';
import { language, marked, pickLanguage, rich, setLanguage, t, translateStatic } from './i18n/index.ts';
import type { Model } from './model.ts';
import { computeModel } from './model.ts';
import { renderChecks, renderTwoInputNote } from './panels.ts';
import type { Params, Problem } from './params.ts';
import { MAX_N, MIN_N, defaultDy, defaultX, parseNumber, parseParams, ruleBounds, rules, toSearch } from './params.ts';
import { forwardFormula, steps } from './steps.ts';
import { BATCH, computeTraining, renderTraining } from './training.ts';

const parsed = parseParams(window.location.search);
const picked = pickLanguage(window.location.search, navigator.languages);
let params: Params = parsed.params;
let model: Model = computeModel(params);
let urlProblems: Problem[] = [...parsed.problems, ...(picked.problem === null ? [] : [picked.problem])];
let fieldProblems: Problem[] = [];
let stepIndex = -1;
let edgeShown: GraphEdge | null = null;
let graphWidth = 0;
/** The webgpu backend: not asked yet, being asked, running, or why not. */
let gpuState: 'idle' | 'checking' | GpuStart = 'idle';
let backend: 'js' | 'webgpu' = 'js';
let wasmThreads: number | null = null;
/** Bumped on every change, so a late webgpu answer for older values is dropped. */
let generation = 0;

const problems = byId('problems', HTMLElement);
const graph = byId('graph', HTMLElement);
const edgeInfo = byId('edge-info', HTMLElement);
const stepPanel = byId('steps', HTMLElement);
const controls = byId('controls', HTMLFormElement);
const trainingControls = byId('training-controls', HTMLFormElement);
const backendSelect = byId('backend', HTMLSelectElement);
const languageSelect = byId('lang', HTMLSelectElement);

function showProblems(): void {
  const list = [...urlProblems, ...fieldProblems];
  problems.replaceChildren(...list.map((p) => html('li', {}, rich(`problems.${p.key}`, { ...p.values }))));
  problems.hidden = list.length === 0;
}

function showEdge(edge: GraphEdge | null): void {
  edgeShown = edge;
  edgeInfo.replaceChildren(...(edge ? [html('span', { translate: 'no', class: 'math' }, [`${edge.formula} = ${short(edge.local)}`])] : rich('graph.hint')));
}

function renderGraphPanel(): void {
  // a page being laid out (or captured) may report no width for a moment: keep the last drawing
  if (graph.clientWidth < 100) return;
  graphWidth = graph.clientWidth;
  graph.replaceChildren(renderGraph(model, graphWidth, getComputedStyle(graph).fontFamily, showEdge));
  markActive();
}

/** KaTeX lines, each free to wrap after = and +; a line still too wide is scaled down to fit. */
function renderFormula(container: HTMLElement, lines: readonly string[]): void {
  container.replaceChildren(
    ...lines.map((line) => {
      const element = html('div', { class: 'formula-line' });
      katex.render(`\\displaystyle ${line}`, element, { displayMode: false, throwOnError: true });
      return element;
    }),
  );
  for (const element of container.querySelectorAll<HTMLElement>('.formula-line')) {
    const fit = element.clientWidth / element.scrollWidth;
    if (element.clientWidth > 0 && fit < 1) element.style.fontSize = `${Math.max(0.6, Math.floor(fit * 100) / 100)}em`;
  }
}

function markActive(): void {
  const step = stepIndex >= 0 ? steps[stepIndex] : undefined;
  const active = new Set(step ? step.nodes(model) : []);
  for (const node of graph.querySelectorAll<SVGGElement>('[data-node]')) {
    const on = active.has(node.dataset.node ?? '');
    node.classList.toggle('active', on);
    node.dataset.active = String(on);
  }
}

function renderStep(): void {
  const step = stepIndex >= 0 ? steps[stepIndex] : undefined;
  markActive();
  stepPanel.dataset.step = step?.id ?? 'forward';
  const title = byId('step-title', HTMLElement);
  const formula = byId('step-formula', HTMLElement);
  const note = byId('step-note', HTMLElement);
  byId('step-count', HTMLElement).replaceChildren(...rich(step ? 'steps.count' : 'steps.forward', { n: stepIndex + 1, total: steps.length }));
  if (!step) {
    title.replaceChildren(...rich('steps.forwardTitle'));
    renderFormula(formula, forwardFormula);
    note.replaceChildren(...rich('steps.forwardNote', { mu: short(model.ref.mu[0]), var: short(model.ref.var[0]), loss: short(model.loss) }));
    return;
  }
  title.replaceChildren(...rich(`steps.${step.id}.title`));
  renderFormula(formula, step.formula(model));
  note.replaceChildren(...rich(`steps.${step.id}.note`, step.noteValues(model)));
}

function renderGpuStatus(): void {
  const status = byId('gpu-status', HTMLElement);
  const state = gpuState;
  status.dataset.gpu = typeof state === 'string' ? state : 'gpu' in state ? 'on' : state.reason;
  if (state === 'idle' || state === 'checking') status.replaceChildren(...rich(state === 'idle' ? 'checks.gpuIdle' : 'checks.gpuChecking'));
  else if ('gpu' in state) status.replaceChildren(...rich('checks.gpuOn', { adapter: state.gpu.adapter }));
  else status.replaceChildren(...rich(`checks.${state.reason}`, { message: 'message' in state ? state.message : '' }));
}

/** The check panel on the chosen backend: js at once, webgpu once its download arrives. */
function renderCheckPanel(): void {
  const checks = byId('checks', HTMLElement);
  const current = ++generation;
  const gpu: PageGpu | null = typeof gpuState !== 'string' && 'gpu' in gpuState ? gpuState.gpu : null;
  if (backend === 'js' || gpu === null) {
    checks.replaceChildren(renderChecks(model, { backend: 'js', label: marked('checks.jsLabel'), dx: model.closedDx }));
    return;
  }
  const label = marked('checks.gpuLabel', { adapter: gpu.adapter });
  checks.replaceChildren(renderChecks(model, { backend: 'webgpu', label, dx: null }));
  const shown = model;
  gpuInputGrad(gpu.kernels, shown.params).then(
    (dx) => {
      if (current === generation) checks.replaceChildren(renderChecks(shown, { backend: 'webgpu', label: marked('checks.gpuLabel', { adapter: gpu.adapter }), dx }));
    },
    (error: unknown) => {
      gpuState = { reason: 'gpuFailed', message: error instanceof Error ? error.message : String(error) };
      backend = 'js';
      backendSelect.value = 'js';
      renderGpuStatus();
      renderCheckPanel();
    },
  );
}

function renderTrainingPanel(): void {
  byId('training-intro', HTMLElement).replaceChildren(...rich('training.intro', { count: params.steps, batch: BATCH }));
  byId('training', HTMLElement).replaceChildren(renderTraining(params, computeTraining(params)));
}

function renderWasmStatus(): void {
  const status = byId('wasm-status', HTMLElement);
  if (wasmThreads === null) status.replaceChildren(...rich('footer.wasmLoading'));
  else status.replaceChildren(...rich(wasmThreads === 0 ? 'footer.wasmNone' : 'footer.wasmThreads', { count: wasmThreads }));
}

function render(): void {
  renderGraphPanel();
  renderCheckPanel();
  renderTrainingPanel();
  byId('two-inputs', HTMLElement).replaceChildren(renderTwoInputNote(model));
  byId('n-value', HTMLElement).textContent = String(params.x.length);
  renderStep();
}

/** Everything that has words: after a language switch. */
function renderAll(): void {
  translateStatic();
  languageSelect.value = language();
  buildControls();
  render();
  showEdge(edgeShown);
  showProblems();
  renderGpuStatus();
  renderWasmStatus();
  renderFamily(byId('family', HTMLElement));
}

function field(name: string, label: string, value: number): HTMLElement {
  const input = html('input', { id: `in-${name}`, name, type: 'text', inputmode: 'decimal', value: String(value), autocomplete: 'off' });
  return html('label', { class: 'field' }, [html('span', {}, [label]), input]);
}

function buildControls(): void {
  const n = params.x.length;
  const xs = Array.from({ length: n }, (_, i) => field(`x${i + 1}`, `x${sub(i + 1)}`, params.x[i]));
  const dys = Array.from({ length: n }, (_, i) => field(`dy${i + 1}`, `∂L/∂y${sub(i + 1)}`, params.dy[i]));
  byId('x-fields', HTMLElement).replaceChildren(...xs);
  byId('dy-fields', HTMLElement).replaceChildren(...dys);
  byId('scalar-fields', HTMLElement).replaceChildren(
    ...(['gamma', 'beta', 'eps'] as const).map((name) => field(name, t(`controls.${name}`), params[name])),
  );
  byId('n-minus', HTMLButtonElement).disabled = n <= MIN_N;
  byId('n-plus', HTMLButtonElement).disabled = n >= MAX_N;
  byId('in-momentum', HTMLInputElement).value = params.momentum === null ? '' : String(params.momentum);
  byId('in-steps', HTMLInputElement).value = String(params.steps);
  byId('in-seed', HTMLInputElement).value = String(params.seed);
}

function writeUrl(): void {
  window.history.replaceState(null, '', toSearch(params, language()));
}

function update(next: Params): void {
  params = next;
  model = computeModel(params);
  writeUrl();
  render();
}

/** Reads every field; an invalid one is marked and reported, and the view keeps the last valid values. */
function readControls(): void {
  const errors: Problem[] = [];
  const read = (name: string, check: (v: number) => boolean, rule: string, empty: number | null = Number.NaN): number => {
    const input = byId(`in-${name}`, HTMLInputElement);
    const text = input.value;
    const value = text.trim() === '' ? empty : parseNumber(text);
    const ok = value === null || (Number.isFinite(value) && check(value));
    input.setAttribute('aria-invalid', String(!ok));
    if (!ok) errors.push({ key: 'field', values: { name, text, rule: marked(`problems.${rule}`, ruleBounds) } });
    return value ?? Number.NaN;
  };
  const n = params.x.length;
  const x = Array.from({ length: n }, (_, i) => read(`x${i + 1}`, () => true, 'ruleNumber'));
  const dy = Array.from({ length: n }, (_, i) => read(`dy${i + 1}`, () => true, 'ruleNumber'));
  const [gamma, beta, eps, steps, seed] = (['gamma', 'beta', 'eps', 'steps', 'seed'] as const).map((name) => read(name, rules[name].check, rules[name].rule));
  const momentumText = byId('in-momentum', HTMLInputElement).value;
  const momentum = momentumText.trim() === '' ? null : read('momentum', rules.momentum.check, rules.momentum.rule);
  if (momentum === null) byId('in-momentum', HTMLInputElement).setAttribute('aria-invalid', 'false');
  fieldProblems = errors;
  urlProblems = [];
  showProblems();
  if (errors.length === 0) update({ x, dy, gamma, beta, eps, momentum, steps, seed });
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

function switchLanguage(next: Language): void {
  setLanguage(next);
  writeUrl();
  renderAll();
}

for (const form of [controls, trainingControls]) {
  form.addEventListener('input', readControls);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
  });
}
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
languageSelect.addEventListener('change', () => {
  switchLanguage(languageSelect.value === 'zh' ? 'zh' : 'en');
});
document.addEventListener('keydown', (event) => {
  if (event.defaultPrevented || event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
  if (event.key === 'ArrowRight') go(1);
  else if (event.key === 'ArrowLeft') go(-1);
  else return;
  event.preventDefault();
});
// the graph is laid out for its width: lay it out again when that changes
new ResizeObserver(() => {
  if (graph.clientWidth >= 100 && graph.clientWidth !== graphWidth) {
    renderGraphPanel();
    renderStep();
  }
}).observe(graph);

/** The webgpu backend is asked for when chosen; where there is none the page says why and stays on js. */
backendSelect.addEventListener('change', () => {
  void chooseBackend(backendSelect.value === 'webgpu' ? 'webgpu' : 'js');
});

async function chooseBackend(choice: 'js' | 'webgpu'): Promise<void> {
  backend = choice;
  if (choice === 'webgpu' && (gpuState === 'idle' || (typeof gpuState !== 'string' && !('gpu' in gpuState)))) {
    gpuState = 'checking';
    renderGpuStatus();
    gpuState = await startGpu();
    if (!('gpu' in gpuState)) {
      backend = 'js';
      backendSelect.value = 'js';
    }
    renderGpuStatus();
  }
  renderCheckPanel();
}

setLanguage(picked.language);
writeUrl();
renderAll();
// formulas are fitted to the width once KaTeX's fonts have arrived
void document.fonts.ready.then(renderStep);

declare global {
  interface Window {
    normkit: typeof normkit;
  }
}
window.normkit = normkit;

/** Loads the wasm backend and, on a cross-origin-isolated page, its Web Worker threads; says what runs. */
async function startWasm(): Promise<void> {
  let threads = 0;
  try {
    if (await normkit.wasmReady()) threads = crossOriginIsolated ? await normkit.startWasmWorkers(Math.min(navigator.hardwareConcurrency, 4)) : 1;
  } catch {
    // a page without shared memory runs wasm on its main thread; the footer says so
    threads = normkit.wasmAvailable() ? 1 : 0;
  }
  wasmThreads = threads;
  byId('wasm-status', HTMLElement).dataset.wasmThreads = String(threads);
  renderWasmStatus();
}
void startWasm();
