/** The `normalization-fixtures/1` format (see shared/fixtures/README.md): types and a checked parser. */
import { NormkitError } from '../errors.js';
import { numel } from '../core/float.js';

export interface FixtureTensor {
  readonly shape: readonly number[];
  readonly data: readonly number[];
}

export interface FixtureExpect {
  readonly output?: FixtureTensor;
  readonly grad_input?: FixtureTensor;
  readonly grad_weight?: readonly number[];
  readonly grad_bias?: readonly number[];
  readonly running_mean?: readonly number[];
  readonly running_var?: readonly number[];
  readonly num_batches_tracked?: number;
}

export interface FixtureStep {
  readonly mode: 'train' | 'eval';
  readonly input: FixtureTensor;
  readonly grad_output: FixtureTensor;
  readonly expect?: FixtureExpect;
  readonly expect_float64?: FixtureExpect;
  readonly expect_error?: string;
}

export interface FixtureCase {
  readonly name: string;
  readonly description?: string;
  readonly module: string;
  readonly dtype: 'float32' | 'float64';
  readonly options: Readonly<Record<string, unknown>>;
  readonly state: Readonly<Record<string, readonly number[] | number>>;
  readonly steps: readonly FixtureStep[];
}

export interface FixtureFile {
  readonly format: 'normalization-fixtures/1';
  readonly generator?: string;
  readonly cases: readonly FixtureCase[];
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isNumberArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'number');
}

function checkFixtureTensor(value: unknown, where: string): void {
  if (!isRecord(value) || !isNumberArray(value.shape) || !isNumberArray(value.data)) {
    throw new NormkitError('fixture', `${where}: expected {shape: number[], data: number[]}`);
  }
  if (numel(value.shape) !== value.data.length) {
    throw new NormkitError('fixture', `${where}: data has ${value.data.length} values for shape [${value.shape.join(', ')}]`);
  }
}

/** The training variants (variants.json): virtualBatchSize a positive integer, renorm { rmax, dmax } numbers; null or absent is off. */
function checkVariantOptions(options: Record<string, unknown>, where: string): void {
  const { virtualBatchSize: v, renorm } = options;
  if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) {
    throw new NormkitError('fixture', `${where}: options.virtualBatchSize must be a positive integer, got ${JSON.stringify(v)}`);
  }
  if (renorm !== undefined && renorm !== null && !(isRecord(renorm) && typeof renorm.rmax === 'number' && typeof renorm.dmax === 'number')) {
    throw new NormkitError('fixture', `${where}: options.renorm must be {rmax: number, dmax: number}, got ${JSON.stringify(renorm)}`);
  }
}

/** Throws unless `json` has the structure the runner relies on. */
function checkFixtureFile(json: unknown, source: string): asserts json is FixtureFile {
  if (!isRecord(json) || json.format !== 'normalization-fixtures/1' || !Array.isArray(json.cases)) {
    throw new NormkitError('fixture', `${source}: expected {"format": "normalization-fixtures/1", "cases": [...]}`);
  }
  json.cases.forEach((c: unknown, ci) => {
    const where = `${source}: cases[${ci}]`;
    if (!isRecord(c) || typeof c.name !== 'string' || typeof c.module !== 'string' || !Array.isArray(c.steps)) {
      throw new NormkitError('fixture', `${where}: expected name, module and steps`);
    }
    if (c.dtype !== 'float32' && c.dtype !== 'float64') throw new NormkitError('fixture', `${where}: dtype must be float32 or float64`);
    if (!isRecord(c.options) || !isRecord(c.state)) throw new NormkitError('fixture', `${where}: expected options and state objects`);
    checkVariantOptions(c.options, where);
    c.steps.forEach((s: unknown, si) => {
      const at = `${where} (${String(c.name)}) steps[${si}]`;
      if (!isRecord(s) || (s.mode !== 'train' && s.mode !== 'eval')) throw new NormkitError('fixture', `${at}: mode must be train or eval`);
      checkFixtureTensor(s.input, `${at}.input`);
      checkFixtureTensor(s.grad_output, `${at}.grad_output`);
      if (typeof s.expect_error !== 'string' && !isRecord(s.expect_float64)) {
        throw new NormkitError('fixture', `${at}: expected expect_float64 or expect_error`);
      }
    });
  });
}

/** Parses fixture JSON text, checking its structure. */
export function parseFixtures(text: string, source = 'fixture'): FixtureFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new NormkitError('fixture', `${source}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  checkFixtureFile(json, source);
  return json;
}
