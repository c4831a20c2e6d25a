/**
 * The one state-dict loader (normalizations, Linear, FrozenBatchNorm2d): PyTorch's key names and error
 * wording, strict by default, every value checked before anything is written.
 */
import { NormkitError } from '../errors.js';
import { typedArrayTag } from '../core/typed.js';
import type { FloatArray } from '../core/float.js';
import { describeValue } from '../tensor.js';
import { noteWrite } from './saved.js';
import type { ModuleState, ModuleStateInput } from './module.js';
import type { Parameter } from './parameter.js';

export interface StateSpec {
  /** Arrays loaded by key, in place. */
  readonly arrays: ReadonlyMap<string, FloatArray>;
  /** Non-negative integer entries (num_batches_tracked) and where they go. */
  readonly counters?: ReadonlyMap<string, (value: number) => void>;
  /** Keys accepted and dropped (FrozenBatchNorm2d drops BatchNorm2d's num_batches_tracked). */
  readonly ignored?: readonly string[];
  /** Reject NaN and Inf, and a negative running_var, naming who refuses them ("this layer (nonFinite: 'throw')"). */
  readonly finiteOnly?: string | undefined;
}

export function parameterState(params: readonly Parameter[]): ModuleState {
  return Object.fromEntries(params.map((p) => [p.name, p.data.slice()]));
}

export function parameterSpec(params: readonly Parameter[]): StateSpec {
  return { arrays: new Map(params.map((p) => [p.name, p.data])) };
}

/** The `strict` of loadStateDict's `{ strict }` options (default true), checked: a JavaScript caller can pass anything. */
export function readStrict(module: string, options: unknown): boolean {
  if (options === undefined) return true;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new NormkitError('option', `${module}: loadStateDict options must be an object like { strict }, got ${describeValue(options)}`);
  }
  const strict: unknown = 'strict' in options ? options.strict : undefined;
  if (strict === undefined) return true;
  if (typeof strict !== 'boolean') throw new NormkitError('option', `${module}: strict must be true or false, got ${describeValue(strict)}`);
  return strict;
}

function refuse(module: string, why: string): never {
  throw new NormkitError('state-dict', `Error(s) in loading state_dict for ${module}: ${why}`);
}

function unexpectedText(keys: readonly string[]): string {
  return `Unexpected key(s) in state_dict: ${keys.map((k) => `"${k}"`).join(', ')}.`;
}

function checkStateObject(module: string, state: ModuleStateInput): void {
  // a JavaScript caller can pass anything: check as unknown
  const given: unknown = state;
  if (typeof given !== 'object' || given === null || Array.isArray(given) || typedArrayTag(given) !== undefined) {
    refuse(module, `expected a state dict object (key to values), got ${describeValue(given)}`);
  }
}

/**
 * For a container (Sequential): the error loadState gives, unless every key of `state` belongs to one of
 * its parts (`belongs`); each part then loads its own keys, strict as the container is.
 */
export function refuseUnowned(module: string, state: ModuleStateInput, belongs: (key: string) => boolean): void {
  checkStateObject(module, state);
  const unexpected = Object.keys(state).filter((k) => !belongs(k));
  if (unexpected.length > 0) refuse(module, unexpectedText(unexpected));
}

/**
 * Loads `state` into `spec` for `module`, all or nothing. strict: missing and unexpected keys are errors;
 * a wrong length always is (checked before anything is allocated). Every array written is reported to
 * saved.ts, so a backward that needs it sees the change.
 */
export function loadState(module: string, spec: StateSpec, state: ModuleStateInput, strict = true): void {
  const fail = (why: string): never => refuse(module, why);
  checkStateObject(module, state);
  const counters = spec.counters ?? new Map<string, (value: number) => void>();
  const keys = [...spec.arrays.keys(), ...counters.keys()];
  const ignored = spec.ignored ?? [];
  if (strict) {
    const missing = keys.filter((k) => !(k in state));
    const unexpected = Object.keys(state).filter((k) => !keys.includes(k) && !ignored.includes(k));
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`Missing key(s) in state_dict: ${missing.map((k) => `"${k}"`).join(', ')}.`);
    if (unexpected.length > 0) parts.push(unexpectedText(unexpected));
    if (parts.length > 0) fail(parts.join(' '));
  }
  const writes: (() => void)[] = [];
  for (const [key, target] of spec.arrays) {
    if (!(key in state)) continue;
    // a JavaScript caller can pass anything: check as unknown
    const value: unknown = state[key];
    if (typeof value !== 'object' || value === null) return fail(`${key} must be an array of numbers`);
    // the length read once: an array-like whose length changes between reads must not size the copy differently
    const length: unknown = 'length' in value ? value.length : undefined;
    if (typeof length !== 'number') return fail(`${key} must be an array of numbers`);
    if (length !== target.length) {
      fail(`size mismatch for ${key}: copying a param with shape [${length}] from checkpoint, the shape in current model is [${target.length}].`);
    }
    const checked = new Float64Array(length);
    for (let i = 0; i < length; i++) {
      const v: unknown = Reflect.get(value, i);
      if (typeof v !== 'number') return fail(`${key}[${i}] is not a number`);
      if (spec.finiteOnly !== undefined && !Number.isFinite(v)) fail(`${key}[${i}] is ${v}, and ${spec.finiteOnly} accepts finite values only`);
      if (spec.finiteOnly !== undefined && (key === 'running_var' || key === 'moving_variance') && v < 0) fail(`${key}[${i}] is negative (${v})`);
      checked[i] = v;
    }
    writes.push(() => {
      target.set(checked);
      noteWrite(target);
    });
  }
  for (const [key, set] of counters) {
    if (!(key in state)) continue;
    const raw: unknown = state[key];
    // an int64 counter may come as a bigint (safetensors, JSON parsers with big integers)
    const value = typeof raw === 'bigint' && raw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(raw) : raw;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) return fail(`${key} must be a non-negative integer, got ${describeValue(raw)}`);
    writes.push(() => {
      set(value);
    });
  }
  for (const write of writes) write();
}
