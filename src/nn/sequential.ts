/** A chain of modules: forward in order, backward in reverse; state keys prefixed by position ("0.weight"), as in PyTorch. */
import { NormkitError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { describeValue } from '../tensor.js';
import type { Module, ModuleState, ModuleStateInput } from './module.js';
import type { Parameter } from './parameter.js';
import { readStrict, refuseUnowned } from './state.js';

/** The entries of module i ("i.weight" -> "weight"). */
function partOf(state: ModuleStateInput, i: number): ModuleStateInput {
  const prefix = `${i}.`;
  return Object.fromEntries(Object.entries(state).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

function isModule(m: unknown): m is Module {
  if (typeof m !== 'object' || m === null) return false;
  return ['forward', 'backward', 'parameters', 'zeroGrad', 'stateDict', 'loadStateDict'].every((k) => typeof Reflect.get(m, k) === 'function');
}

export class Sequential implements Module {
  readonly name = 'Sequential';
  readonly modules: readonly Module[];

  constructor(...modules: Module[]) {
    // a JavaScript caller can pass anything: each entry must be a module (forward, backward, parameters, state)
    const given: unknown[] = modules;
    given.forEach((m, i) => {
      if (!isModule(m)) throw new NormkitError('option', `Sequential: expected modules (forward, backward, parameters, stateDict, loadStateDict), got ${describeValue(m)} at position ${i}`);
    });
    this.modules = [...modules];
  }

  forward(x: Tensor): Tensor {
    return this.modules.reduce((t, m) => m.forward(t), x);
  }

  backward(dy: Tensor): Tensor {
    return this.modules.reduceRight((g, m) => m.backward(g), dy);
  }

  parameters(): Parameter[] {
    return this.modules.flatMap((m) => m.parameters());
  }

  zeroGrad(): void {
    for (const m of this.modules) m.zeroGrad();
  }

  train(mode = true): this {
    for (const m of this.modules) m.train?.(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  stateDict(): ModuleState {
    const state: ModuleState = {};
    this.modules.forEach((m, i) => {
      for (const [k, v] of Object.entries(m.stateDict())) state[`${i}.${k}`] = v;
    });
    return state;
  }

  /** Loads "i.key" into module i (nn/state.ts); strict (default) refuses keys of no module and each module's missing or unexpected ones. */
  loadStateDict(state: ModuleStateInput, options?: { strict?: boolean }): void {
    const strict = readStrict(this.name, options);
    refuseUnowned(this.name, state, (key) => !strict || this.modules.some((_, i) => key.startsWith(`${i}.`)));
    // each module checks its part before writing it; if a later part fails, the earlier ones are restored
    const snapshot = this.stateDict();
    if (strict) {
      const unexpected = Object.keys(state).filter((k) => !(k in snapshot));
      if (unexpected.length > 0) {
        throw new NormkitError('state-dict', `Error(s) in loading state_dict for Sequential: Unexpected key(s) in state_dict: ${unexpected.map((k) => `"${k}"`).join(', ')}.`);
      }
    }
    // each module checks its part before writing it; if a later part fails, the earlier ones are restored
    try {
      this.modules.forEach((m, i) => {
        m.loadStateDict(partOf(state, i), { strict });
      });
    } catch (error) {
      this.modules.forEach((m, i) => {
        m.loadStateDict(partOf(snapshot, i));
      });
      throw error;
    }
  }
}
