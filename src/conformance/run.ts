/**
 * Runs fixture cases through the layers on one backend and layout: each step sets the mode, zeroes
 * the gradients, runs forward and backward, and compares every tensor with the float64 truth.
 */
import type { Layout } from '../core/layout.js';
import { toChannelsFirst, toChannelsLast } from '../core/transpose.js';
import type { FixtureCase, FixtureExpect, FixtureFile, FixtureStep, FixtureTensor } from '../io/fixtures.js';
import { backends } from '../kernels/index.js';
import type { BackendName } from '../kernels/contract.js';
import type { Normalization, StateDict } from '../nn/normalization.js';
import { buildLayer, hasLayout } from '../nn/layers-by-name.js';
import type { FloatArray, Tensor } from '../tensor.js';
import { allocate } from '../tensor.js';
import { conformanceBound, normalizeErrorText, normalizedError } from './compare.js';

export interface ConformanceRow {
  readonly case: string;
  readonly step: number;
  readonly mode: 'train' | 'eval';
  /** output, grad_input, grad_weight, grad_bias, running_mean, running_var, num_batches_tracked, or error. */
  readonly tensor: string;
  readonly error: number | null;
  readonly torchError: number | null;
  readonly bound: number | null;
  readonly ok: boolean;
  readonly detail: string;
  /** The backend cannot run the case (a dtype it lacks): not compared, not counted as passed. */
  readonly skipped?: true;
}

/** What we computed in one step, in the fixture's own shapes (`--dump`). */
export type ActualStep =
  | {
      output: FixtureTensor;
      grad_input: FixtureTensor;
      grad_weight?: number[];
      grad_bias?: number[];
      running_mean?: number[];
      running_var?: number[];
      num_batches_tracked?: number;
    }
  | { error: string };

export interface CaseResult {
  readonly rows: ConformanceRow[];
  readonly actual: ActualStep[];
}

export interface RunOptions {
  readonly backend: BackendName;
  readonly layout: Layout;
}

function toTensor(t: FixtureTensor, layer: Normalization, layout: Layout, transpose: boolean): Tensor {
  const data = allocate(layer.dtype, t.data.length);
  data.set(t.data);
  return transpose && layout === 'channels-last' ? toChannelsLast(data, t.shape) : { data, shape: [...t.shape] };
}

function fromTensor(t: Tensor, layout: Layout, transpose: boolean): FixtureTensor {
  const back = transpose && layout === 'channels-last' ? toChannelsFirst(t.data, t.shape) : t;
  return { shape: [...back.shape], data: Array.from(back.data) };
}

function sameState(a: StateDict, b: StateDict): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => {
    const x = a[k];
    const y = b[k];
    if (typeof x === 'number' || typeof y === 'number') return Object.is(x, y);
    return x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
  });
}

function gradsOf(layer: Normalization): FloatArray[] {
  return layer.parameters().map((p) => p.grad.slice());
}

function runErrorStep(c: FixtureCase, index: number, step: FixtureStep, layer: Normalization, input: Tensor): ConformanceRow {
  const expected = normalizeErrorText(step.expect_error ?? '');
  const before = layer.stateDict();
  const gradsBefore = gradsOf(layer);
  let message: string | null = null;
  try {
    layer.forward(input);
  } catch (error) {
    message = error instanceof Error ? error.message : String(error);
  }
  const unchanged = sameState(before, layer.stateDict()) && gradsOf(layer).every((g, i) => g.every((v, j) => Object.is(v, gradsBefore[i][j])));
  const matched = message !== null && message.includes(expected);
  const detail =
    message === null ? `no error; expected "${expected}"` : matched ? (unchanged ? message : `${message} (but the state changed)`) : `got "${message}", expected "${expected}"`;
  return { case: c.name, step: index, mode: step.mode, tensor: 'error', error: null, torchError: null, bound: null, ok: matched && unchanged, detail };
}

function compareStep(c: FixtureCase, index: number, step: FixtureStep, actual: ActualStep): ConformanceRow[] {
  const truth: FixtureExpect = step.expect_float64 ?? {};
  const torch: FixtureExpect = step.expect ?? truth;
  const rows: ConformanceRow[] = [];
  const base = { case: c.name, step: index, mode: step.mode };
  if ('error' in actual) {
    return [{ ...base, tensor: 'error', error: null, torchError: null, bound: null, ok: false, detail: `unexpected error: ${actual.error}` }];
  }
  const pick = (e: FixtureExpect, key: 'output' | 'grad_input' | 'grad_weight' | 'grad_bias' | 'running_mean' | 'running_var') => {
    const v = e[key];
    return v === undefined ? undefined : Array.isArray(v) ? v : (v as FixtureTensor).data;
  };
  for (const key of ['output', 'grad_input', 'grad_weight', 'grad_bias', 'running_mean', 'running_var'] as const) {
    const t = pick(truth, key);
    if (t === undefined) continue;
    const mine = pick(actual, key);
    const torchValues = pick(torch, key) ?? t;
    const error = mine === undefined ? Number.NaN : normalizedError(mine, t);
    const torchError = normalizedError(torchValues, t);
    const bound = conformanceBound(c.dtype, torchError);
    rows.push({ ...base, tensor: key, error, torchError, bound, ok: error <= bound, detail: mine === undefined ? 'missing' : '' });
  }
  if (truth.num_batches_tracked !== undefined) {
    const ok = actual.num_batches_tracked === truth.num_batches_tracked;
    rows.push({
      ...base,
      tensor: 'num_batches_tracked',
      error: ok ? 0 : 1,
      torchError: 0,
      bound: 0,
      ok,
      detail: `${String(actual.num_batches_tracked)} (expected ${truth.num_batches_tracked})`,
    });
  }
  return rows;
}

/** Runs one case on a fresh layer: one row per compared tensor, and what we computed per step. */
export function runCase(c: FixtureCase, options: RunOptions): CaseResult {
  const { dtypes } = backends[options.backend];
  if (!dtypes.includes(c.dtype)) {
    const detail = `skipped: the ${options.backend} backend computes in ${dtypes.join(', ')} only`;
    const row: ConformanceRow = { case: c.name, step: 0, mode: c.steps[0]?.mode ?? 'train', tensor: 'skipped', error: null, torchError: null, bound: null, ok: true, detail, skipped: true };
    return { rows: [row], actual: c.steps.map(() => ({ error: detail })) };
  }
  const layout = hasLayout(c.module) ? options.layout : 'channels-first';
  const layer = buildLayer(c.module, c.options, { dtype: c.dtype, backend: options.backend, layout });
  // the generator writes running statistics even where the module keeps none: load the keys this layer has
  const own = new Set(Object.keys(layer.stateDict()));
  layer.loadStateDict(Object.fromEntries(Object.entries(c.state).filter(([k]) => own.has(k))));
  const rows: ConformanceRow[] = [];
  const actual: ActualStep[] = [];
  c.steps.forEach((step, index) => {
    layer.train(step.mode === 'train');
    layer.zeroGrad();
    const transpose = layout === 'channels-last';
    const input = toTensor(step.input, layer, layout, transpose);
    if (step.expect_error !== undefined) {
      const row = runErrorStep(c, index, step, layer, input);
      rows.push(row);
      actual.push({ error: row.detail });
      return;
    }
    let result: ActualStep;
    try {
      const y = layer.forward(input);
      const dx = layer.backward(toTensor(step.grad_output, layer, layout, transpose));
      result = {
        output: fromTensor(y, layout, transpose),
        grad_input: fromTensor(dx, layout, transpose),
        ...(layer.weight && { grad_weight: Array.from(layer.weight.grad) }),
        ...(layer.bias && { grad_bias: Array.from(layer.bias.grad) }),
        ...(layer.runningMean && { running_mean: Array.from(layer.runningMean) }),
        ...(layer.runningVar && { running_var: Array.from(layer.runningVar), num_batches_tracked: layer.numBatchesTracked }),
      };
    } catch (error) {
      result = { error: error instanceof Error ? error.message : String(error) };
    }
    actual.push(result);
    rows.push(...compareStep(c, index, step, result));
  });
  return { rows, actual };
}

export interface FileResult {
  readonly rows: ConformanceRow[];
  /** The fixture with an `actual` object in every step. */
  readonly dump: FixtureFile;
}

export function runFixtures(file: FixtureFile, options: RunOptions): FileResult {
  const rows: ConformanceRow[] = [];
  const cases = file.cases.map((c) => {
    const result = runCase(c, options);
    rows.push(...result.rows);
    return { ...c, steps: c.steps.map((s, i) => ({ ...s, actual: result.actual[i] })) };
  });
  return { rows, dump: { ...file, cases } };
}
