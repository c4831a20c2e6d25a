/** A chain of modules: forward in order, backward in reverse; state keys prefixed by position ("0.weight"), as in PyTorch. */
import type { Tensor } from '../tensor.js';
import type { Module, ModuleState, ModuleStateInput } from './module.js';
import type { Parameter } from './parameter.js';

export class Sequential implements Module {
  readonly name = 'Sequential';
  readonly modules: readonly Module[];

  constructor(...modules: Module[]) {
    this.modules = modules;
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

  loadStateDict(state: ModuleStateInput): void {
    // every module checks its part before any writes; a failing part stops before later ones
    const parts = this.modules.map((_, i) => Object.fromEntries(Object.entries(state).filter(([k]) => k.startsWith(`${i}.`)).map(([k, v]) => [k.slice(`${i}.`.length), v])));
    const snapshot = this.stateDict();
    try {
      this.modules.forEach((m, i) => {
        m.loadStateDict(parts[i]);
      });
    } catch (error) {
      // restore the modules already loaded, so the state is never half-updated
      this.modules.forEach((m, i) => {
        m.loadStateDict(Object.fromEntries(Object.entries(snapshot).filter(([k]) => k.startsWith(`${i}.`)).map(([k, v]) => [k.slice(`${i}.`.length), v])));
      });
      throw error;
    }
  }
}
