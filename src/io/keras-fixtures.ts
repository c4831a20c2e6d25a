/** The `keras-renorm/1` format (fixtures/README.md, "Keras Batch Renormalization"): types and a checked parser. */
import { NormkitError } from '../errors.js';
import { numel } from '../core/float.js';
import type { FixtureTensor } from './fixtures.js';
import { isNumberArray, isRecord } from './fixtures.js';

/** Keras's variables, in the order the runner reports them. */
export const kerasVariables = ['moving_mean', 'moving_variance', 'moving_stddev', 'renorm_mean', 'renorm_stddev'] as const;

export type KerasExpect = Readonly<Partial<Record<'output' | 'grad_input', FixtureTensor> & Record<'grad_gamma' | 'grad_beta' | (typeof kerasVariables)[number], readonly number[]>>>;

export interface KerasStep {
  readonly mode: 'train' | 'eval';
  readonly input: FixtureTensor;
  readonly grad_output: FixtureTensor;
  /** Keras in float32 (the peer). */
  readonly expect?: KerasExpect;
  /** Keras in float64 (the truth). */
  readonly expect_float64: KerasExpect;
}

export interface KerasOptions {
  readonly axis: number;
  readonly momentum: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  readonly renorm_clipping: { readonly rmin?: number; readonly rmax?: number; readonly dmax?: number };
  readonly renorm_momentum: number;
}

export interface KerasCase {
  readonly name: string;
  readonly layout?: string;
  readonly options: KerasOptions;
  readonly state: Readonly<Record<string, readonly number[]>>;
  readonly steps: readonly KerasStep[];
}

export interface KerasFixtureFile {
  readonly format: 'keras-renorm/1';
  readonly generator?: string;
  readonly cases: readonly KerasCase[];
}

function checkTensor(value: unknown, where: string): void {
  if (!isRecord(value) || !isNumberArray(value.shape) || !isNumberArray(value.data) || numel(value.shape) !== value.data.length) {
    throw new NormkitError('fixture', `${where}: expected {shape: number[], data: number[]} with as many values as the shape holds`);
  }
}

function checkOptions(value: unknown, where: string): void {
  if (!isRecord(value)) throw new NormkitError('fixture', `${where}: expected an options object`);
  for (const key of ['axis', 'momentum', 'epsilon', 'renorm_momentum']) {
    if (typeof value[key] !== 'number') throw new NormkitError('fixture', `${where}: options.${key} must be a number, got ${JSON.stringify(value[key])}`);
  }
  for (const key of ['center', 'scale']) {
    if (typeof value[key] !== 'boolean') throw new NormkitError('fixture', `${where}: options.${key} must be true or false, got ${JSON.stringify(value[key])}`);
  }
  const clipping = value.renorm_clipping;
  if (!isRecord(clipping) || Object.entries(clipping).some(([k, v]) => !['rmin', 'rmax', 'dmax'].includes(k) || typeof v !== 'number')) {
    throw new NormkitError('fixture', `${where}: options.renorm_clipping must be {rmin?, rmax?, dmax?: number}, got ${JSON.stringify(clipping)}`);
  }
  if (value.axis !== -1) throw new NormkitError('fixture', `${where}: options.axis must be -1 (channels-last), got ${JSON.stringify(value.axis)}`);
}

/** Throws unless `json` has the structure the Keras runner relies on. */
function checkKerasFile(json: unknown, source: string): asserts json is KerasFixtureFile {
  if (!isRecord(json) || json.format !== 'keras-renorm/1' || !Array.isArray(json.cases)) {
    throw new NormkitError('fixture', `${source}: expected {"format": "keras-renorm/1", "cases": [...]}`);
  }
  json.cases.forEach((c: unknown, ci) => {
    const where = `${source}: cases[${ci}]`;
    if (!isRecord(c) || typeof c.name !== 'string' || !Array.isArray(c.steps)) throw new NormkitError('fixture', `${where}: expected name and steps`);
    checkOptions(c.options, where);
    if (!isRecord(c.state) || !Object.values(c.state).every(isNumberArray)) throw new NormkitError('fixture', `${where}: state must map Keras variable names to number arrays`);
    c.steps.forEach((s: unknown, si) => {
      const at = `${where} (${String(c.name)}) steps[${si}]`;
      if (!isRecord(s) || (s.mode !== 'train' && s.mode !== 'eval')) throw new NormkitError('fixture', `${at}: mode must be train or eval`);
      checkTensor(s.input, `${at}.input`);
      checkTensor(s.grad_output, `${at}.grad_output`);
      if (!isRecord(s.expect_float64)) throw new NormkitError('fixture', `${at}: expected expect_float64`);
    });
  });
}

/** The format field of fixture JSON text, or null (to pick a parser). */
export function fixtureFormat(text: string): string | null {
  try {
    const json: unknown = JSON.parse(text);
    return isRecord(json) && typeof json.format === 'string' ? json.format : null;
  } catch {
    return null;
  }
}

/** Parses keras-renorm/1 JSON text, checking its structure. */
export function parseKerasFixtures(text: string, source = 'fixture'): KerasFixtureFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new NormkitError('fixture', `${source}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  checkKerasFile(json, source);
  return json;
}
