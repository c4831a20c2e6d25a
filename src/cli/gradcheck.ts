/** `normkit gradcheck`: central-difference checks of every layer on random or given shapes. */
import { parseArgs } from 'node:util';
import type { GradcheckResult, Layout } from '../index.js';
import { gradcheck, NormkitError, numel, Random } from '../index.js';
import { buildLayer, hasLayout, moduleNames } from '../nn/layers-by-name.js';
import { formatNumber, formatTable } from '../io/table.js';
import { flagLimits, integerFlag } from './numbers.js';

export const gradcheckUsage = `usage: normkit gradcheck [--module NAME] [--shape N,C,...] [--options JSON] [--layout L] [--eval] [--cases K] [--seed S] [--json]
  Central differences in float64 (eps 1e-6, atol 1e-5, rtol 1e-3) with a random dy, for x, weight and bias.
  --module   ${moduleNames.join(', ')} (default: all)
  --shape    input shape (default: K random shapes per module and layout)
  --options  module options as JSON, e.g. '{"numGroups": 2, "numChannels": 4}'
  --layout   channels-first | channels-last (default: both)
  --eval     check eval mode (running statistics are constants)`;

export interface GradcheckCase {
  readonly module: string;
  readonly options: Record<string, unknown>;
  readonly shape: number[];
  readonly layout: Layout;
}

/** A random small configuration of `module`, with its input shape in logical (channels-first) order. */
export function randomCase(module: string, random: Random, layout: Layout): GradcheckCase {
  const n = random.int(2, 3);
  const c = random.int(1, 4);
  const spatial = Array.from({ length: random.int(0, 2) }, () => random.int(2, 3));
  const toLayout = (shape: number[]) => (layout === 'channels-last' ? [shape[0], ...shape.slice(2), shape[1]] : shape);
  switch (module) {
    case 'BatchNorm1d':
      return { module, options: { numFeatures: c }, shape: toLayout(random.next() < 0.5 ? [n, c] : [n, c, random.int(2, 4)]), layout };
    case 'BatchNorm2d':
      return { module, options: { numFeatures: c }, shape: toLayout([n, c, random.int(1, 3), random.int(2, 3)]), layout };
    case 'BatchNorm3d':
      return { module, options: { numFeatures: c }, shape: toLayout([n, c, 2, random.int(1, 2), 2]), layout };
    case 'InstanceNorm1d':
    case 'InstanceNorm2d':
    case 'InstanceNorm3d': {
      const rank = Number(module.charAt(12)) + 2;
      const sp = Array.from({ length: rank - 2 }, () => random.int(2, 3));
      return { module, options: { numFeatures: c, affine: true }, shape: toLayout([n, c, ...sp]), layout };
    }
    case 'GroupNorm': {
      const groups = random.int(1, 3);
      const channels = groups * random.int(1, 3);
      return { module, options: { numGroups: groups, numChannels: channels }, shape: toLayout([n, channels, ...spatial]), layout };
    }
    default: {
      const dims = Array.from({ length: random.int(1, 2) }, () => random.int(2, 4));
      return { module, options: { normalizedShape: dims }, shape: [n, ...dims], layout: 'channels-first' };
    }
  }
}

/** Runs one case in float64 on the reference-grade js backend. */
export function runGradcheck(c: GradcheckCase, seed: number, evalMode = false): GradcheckResult {
  const layer = buildLayer(c.module, c.options, { dtype: 'float64', backend: 'js', layout: c.layout });
  const random = new Random(seed);
  const x = { data: random.normals(numel(c.shape), 0.5, 2), shape: c.shape };
  // non-trivial affine parameters and running statistics, so every term of the gradient is exercised
  layer.weight?.data.set(random.normals(layer.weight.data.length, 1, 0.5));
  layer.bias?.data.set(random.normals(layer.bias.data.length, 0, 0.5));
  if (evalMode) layer.forward(x);
  layer.train(!evalMode);
  return gradcheck(layer, x, { seed: seed + 1 });
}

export function gradcheckCommand(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      module: { type: 'string' },
      shape: { type: 'string' },
      options: { type: 'string' },
      layout: { type: 'string' },
      eval: { type: 'boolean', default: false },
      cases: { type: 'string', default: '3' },
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(gradcheckUsage);
    return 0;
  }
  const seed = integerFlag('--seed', values.seed, -(2 ** 31), 2 ** 31 - 1);
  const count = integerFlag('--cases', values.cases, 1, flagLimits.cases);
  if (values.options !== undefined && values.shape === undefined) {
    throw new NormkitError('option', '--options configures the module for a given --shape: give --shape too');
  }
  if (values.module !== undefined && !(moduleNames as readonly string[]).includes(values.module)) {
    throw new NormkitError('option', `--module must be one of ${moduleNames.join(', ')}, got '${values.module}'`);
  }
  const modules = values.module === undefined ? [...moduleNames] : [values.module];
  if (values.layout !== undefined && values.layout !== 'channels-first' && values.layout !== 'channels-last') {
    throw new NormkitError('option', `--layout must be channels-first or channels-last, got '${values.layout}'`);
  }
  const layouts: Layout[] = values.layout === undefined ? ['channels-first', 'channels-last'] : [values.layout];
  const shape = values.shape === undefined ? null : parseShape(values.shape);
  const given = values.options === undefined ? null : parseOptions(values.options);
  const random = new Random(seed);
  const cases: GradcheckCase[] = [];
  for (const module of modules) {
    for (const layout of hasLayout(module) ? layouts : ['channels-first' as const]) {
      if (shape !== null) {
        cases.push({ module, options: given ?? { ...randomCase(module, random, 'channels-first').options, ...channelsOf(module, shape, layout) }, shape, layout });
      } else {
        for (let k = 0; k < count; k++) cases.push(randomCase(module, random, layout));
      }
    }
  }
  const results = cases.map((c, k) => ({ c, result: runGradcheck(c, seed * 1000 + k, values.eval) }));
  const failed = results.filter((r) => !r.result.ok).length;
  if (values.json) {
    console.log(JSON.stringify({ passed: results.length - failed, failed, results: results.map((r) => ({ ...r.c, ...r.result, entries: r.result.entries.map(({ analytical, numerical, ...e }) => e) })) }, null, 1));
  } else {
    const rows = results.flatMap(({ c, result }) =>
      result.entries.map((e) => [c.module, c.layout, `[${c.shape.join(',')}]`, e.input, formatNumber(e.maxAbsError), formatNumber(e.worstRatio), e.ok ? 'ok' : 'FAIL']),
    );
    console.log(formatTable(['module', 'layout', 'shape', 'input', 'max |a-n|', 'worst ratio', 'verdict'], rows));
    console.log(`\ngradcheck${values.eval ? ' (eval)' : ''}: ${results.length - failed} passed, ${failed} failed`);
  }
  return failed === 0 ? 0 : 1;
}

/** Central differences cost two forward passes per element: beyond this many elements a check takes minutes. */
const maxElements = 10_000;

/** `--shape N,C,...`: positive integers, small enough to check element by element. */
function parseShape(text: string): number[] {
  const shape = text.split(',').map((part) => (part.trim() === '' ? Number.NaN : Number(part)));
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 1)) {
    throw new NormkitError('option', `--shape must be comma-separated positive integers like 2,3,4,4, got '${text}'`);
  }
  const elements = numel(shape);
  if (elements > maxElements) {
    throw new NormkitError('size', `--shape ${text} has ${elements} elements; gradcheck perturbs each one, so it takes at most ${maxElements}`);
  }
  return shape;
}

/** `--options JSON`: an object of module options. */
function parseOptions(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new NormkitError('option', `--options must be a JSON object, e.g. '{"numFeatures": 3}': ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new NormkitError('option', `--options must be a JSON object, got ${text}`);
  }
  return { ...parsed };
}

/** Options that follow from a user-given shape when --options is absent (channel count, normalized dims). */
function channelsOf(module: string, shape: number[], layout: Layout): Record<string, unknown> {
  const c = layout === 'channels-last' ? shape[shape.length - 1] : shape[1];
  if (module === 'LayerNorm') return { normalizedShape: shape.slice(1) };
  if (module === 'GroupNorm') return { numGroups: 1, numChannels: c };
  return { numFeatures: c };
}
