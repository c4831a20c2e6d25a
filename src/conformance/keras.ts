/**
 * Runs keras-renorm/1 cases (Keras 3's Batch Renormalization) through BatchNorm with renorm
 * { convention: 'keras' }, in float32 and float64, on one backend and layout: each step sets the mode,
 * zeroes the gradients, runs forward and backward, and compares every tensor and Keras variable with
 * Keras's float64 truth (bound: max(floor, 2 x Keras's own float32 error), fixtures/README.md).
 */
import type { Layout } from '../core/layout.js';
import { toChannelsFirst, toChannelsLast } from '../core/transpose.js';
import type { FixtureTensor } from '../io/fixtures.js';
import type { KerasCase, KerasExpect, KerasFixtureFile, KerasStep } from '../io/keras-fixtures.js';
import { kerasVariables } from '../io/keras-fixtures.js';
import { backends } from '../kernels/index.js';
import type { BackendName } from '../kernels/contract.js';
import type { BatchNormBase } from '../nn/batchnorm.js';
import { BatchNorm1d, BatchNorm2d, BatchNorm3d } from '../nn/batchnorm.js';
import type { DType, Tensor } from '../tensor.js';
import { allocate } from '../tensor.js';
import { conformanceBound, normalizedError } from './compare.js';
import type { ConformanceRow } from './run.js';

/** What we computed in one step, under Keras's names, channels-last as the fixture (`--dump`). */
export type KerasActual = { [key: string]: FixtureTensor | number[] } | { error: string };

export interface KerasRunOptions {
  readonly backend: BackendName;
  readonly layout: Layout;
  readonly dtype: DType;
}

const tensorKeys = ['output', 'grad_input'] as const;

/** The BatchNorm of a case's input rank, with Keras's options, its variables loaded. */
function buildKerasLayer(c: KerasCase, rank: number, options: KerasRunOptions): BatchNormBase {
  const o = c.options;
  const renorm = { convention: 'keras' as const, ...o.renorm_clipping, momentum: o.momentum, renormMomentum: o.renorm_momentum };
  const settings = { eps: o.epsilon, affine: o.scale || o.center, dtype: options.dtype, backend: options.backend, layout: options.layout, renorm };
  const layer = rank <= 3 ? new BatchNorm1d(c.state.moving_mean.length, settings) : rank === 4 ? new BatchNorm2d(c.state.moving_mean.length, settings) : new BatchNorm3d(c.state.moving_mean.length, settings);
  const state: Partial<Record<string, readonly number[]>> = { ...c.state };
  // normkit's affine holds gamma and beta together: Keras's scale=False is gamma fixed at 1, center=False beta at 0
  if (layer.weight !== null) {
    state.gamma ??= Array.from({ length: layer.numFeatures }, () => 1);
    state.beta ??= Array.from({ length: layer.numFeatures }, () => 0);
  }
  layer.loadStateDict(Object.fromEntries(Object.entries(state).filter((e): e is [string, readonly number[]] => e[1] !== undefined)));
  return layer;
}

function toTensor(t: FixtureTensor, dtype: DType, layout: Layout): Tensor {
  const data = allocate(dtype, t.data.length);
  data.set(t.data);
  return layout === 'channels-first' ? toChannelsFirst(data, t.shape) : { data, shape: [...t.shape] };
}

function fromTensor(t: Tensor, layout: Layout): FixtureTensor {
  const back = layout === 'channels-first' ? toChannelsLast(t.data, t.shape) : t;
  return { shape: [...back.shape], data: Array.from(back.data) };
}

function runStep(layer: BatchNormBase, step: KerasStep, c: KerasCase, options: KerasRunOptions): KerasActual {
  layer.train(step.mode === 'train');
  layer.zeroGrad();
  try {
    const y = layer.forward(toTensor(step.input, options.dtype, options.layout));
    const dx = layer.backward(toTensor(step.grad_output, options.dtype, options.layout));
    const actual: Record<string, FixtureTensor | number[]> = { output: fromTensor(y, options.layout), grad_input: fromTensor(dx, options.layout) };
    if (c.options.scale && layer.weight !== null) actual.grad_gamma = Array.from(layer.weight.grad);
    if (c.options.center && layer.bias !== null) actual.grad_beta = Array.from(layer.bias.grad);
    const state = layer.stateDict();
    for (const key of kerasVariables) {
      const v = state[key];
      if (typeof v !== 'number') actual[key] = Array.from(v);
    }
    return actual;
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

function values(v: FixtureTensor | readonly number[] | undefined): readonly number[] | undefined {
  return v === undefined ? undefined : 'data' in v ? v.data : v;
}

function compareStep(name: string, index: number, step: KerasStep, actual: KerasActual, dtype: DType): ConformanceRow[] {
  const base = { case: name, step: index, mode: step.mode };
  if ('error' in actual && typeof actual.error === 'string') {
    return [{ ...base, tensor: 'error', error: null, torchError: null, bound: null, ok: false, detail: `unexpected error: ${actual.error}` }];
  }
  const truth: KerasExpect = step.expect_float64;
  // the peer: Keras's float32 result for float32, the truth itself for float64
  const peer: KerasExpect = dtype === 'float32' ? (step.expect ?? truth) : truth;
  const rows: ConformanceRow[] = [];
  for (const key of [...tensorKeys, 'grad_gamma', 'grad_beta', ...kerasVariables] as const) {
    const t = values(truth[key]);
    if (t === undefined) continue;
    const mine = values((actual as Record<string, FixtureTensor | number[] | undefined>)[key]);
    const error = mine === undefined ? Number.NaN : normalizedError(mine, t);
    const peerError = normalizedError(values(peer[key]) ?? t, t);
    const bound = conformanceBound(dtype, peerError);
    rows.push({ ...base, tensor: key, error, torchError: peerError, bound, ok: error <= bound, detail: mine === undefined ? 'missing' : '' });
  }
  return rows;
}

export interface KerasCaseResult {
  readonly rows: ConformanceRow[];
  readonly actual: KerasActual[];
}

/** Runs one case on a fresh layer in options.dtype; rows name the case `NAME (dtype)`. */
export function runKerasCase(c: KerasCase, options: KerasRunOptions): KerasCaseResult {
  const name = `${c.name} (${options.dtype})`;
  const { dtypes } = backends[options.backend];
  if (!dtypes.includes(options.dtype)) {
    const detail = `skipped: the ${options.backend} backend computes in ${dtypes.join(', ')} only`;
    const row: ConformanceRow = { case: name, step: 0, mode: c.steps[0]?.mode ?? 'train', tensor: 'skipped', error: null, torchError: null, bound: null, ok: true, detail, skipped: true };
    return { rows: [row], actual: c.steps.map(() => ({ error: detail })) };
  }
  const layer = buildKerasLayer(c, c.steps[0]?.input.shape.length ?? 2, options);
  const rows: ConformanceRow[] = [];
  const actual: KerasActual[] = [];
  c.steps.forEach((step, index) => {
    const result = runStep(layer, step, c, options);
    actual.push(result);
    rows.push(...compareStep(name, index, step, result, options.dtype));
  });
  return { rows, actual };
}

export interface KerasFileResult {
  readonly rows: ConformanceRow[];
  /** The fixture with `actual` (float32, beside Keras's float32 `expect`) and `actual_float64` (beside `expect_float64`) in every step. */
  readonly dump: KerasFixtureFile;
}

/** Every case in float32 and float64. */
export function runKerasFixtures(file: KerasFixtureFile, options: { readonly backend: BackendName; readonly layout: Layout }): KerasFileResult {
  const rows: ConformanceRow[] = [];
  const cases = file.cases.map((c) => {
    const f32 = runKerasCase(c, { ...options, dtype: 'float32' });
    const f64 = runKerasCase(c, { ...options, dtype: 'float64' });
    rows.push(...f32.rows, ...f64.rows);
    return { ...c, steps: c.steps.map((s, i) => ({ ...s, actual: f32.actual[i], actual_float64: f64.actual[i] })) };
  });
  return { rows, dump: { ...file, cases } };
}

