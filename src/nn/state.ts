/** State dicts of plain parameter modules (Linear): strict, checked whole before anything is written. */
import { NormkitError } from '../errors.js';
import type { ModuleState, ModuleStateInput } from './module.js';
import type { Parameter } from './parameter.js';

export function parameterState(params: readonly Parameter[]): ModuleState {
  return Object.fromEntries(params.map((p) => [p.name, p.data.slice()]));
}

export function loadParameters(module: string, params: readonly Parameter[], state: ModuleStateInput): void {
  const fail = (why: string): never => {
    throw new NormkitError('state-dict', `Error(s) in loading state_dict for ${module}: ${why}`);
  };
  const names = params.map((p) => p.name);
  const missing = names.filter((n) => !(n in state));
  const unexpected = Object.keys(state).filter((k) => !names.includes(k));
  if (missing.length > 0) fail(`Missing key(s) in state_dict: ${missing.map((k) => `"${k}"`).join(', ')}.`);
  if (unexpected.length > 0) fail(`Unexpected key(s) in state_dict: ${unexpected.map((k) => `"${k}"`).join(', ')}.`);
  for (const p of params) {
    const value: unknown = state[p.name];
    if (typeof value !== 'object' || value === null || !('length' in value) || value.length !== p.data.length) {
      fail(`size mismatch for ${p.name}: expected ${p.data.length} values`);
    }
  }
  for (const p of params) p.data.set(state[p.name] as ArrayLike<number>);
}
