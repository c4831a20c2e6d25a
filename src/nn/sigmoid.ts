/** Sigmoid, elementwise: y = 1/(1 + e^-x), dx = dy*y*(1 - y). */
import { NormkitError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { allocate, checkTensor, dtypeOf, formatShape } from '../tensor.js';
import type { Module, ModuleState, ModuleStateInput } from './module.js';
import type { Parameter } from './parameter.js';
import { loadState, readStrict } from './state.js';

export class Sigmoid implements Module {
  readonly name = 'Sigmoid';
  #y: Tensor | null = null;

  forward(x: Tensor): Tensor {
    checkTensor(x, 'Sigmoid: input');
    const y = allocate(dtypeOf(x.data), x.data.length);
    for (let i = 0; i < y.length; i++) y[i] = 1 / (1 + Math.exp(-x.data[i]));
    this.#y = { data: y, shape: [...x.shape] };
    return this.#y;
  }

  backward(dy: Tensor): Tensor {
    const y = this.#y;
    if (y === null) throw new NormkitError('no-forward', 'Sigmoid: backward called before forward');
    checkTensor(dy, 'Sigmoid: grad_output');
    if (dy.data.length !== y.data.length || dtypeOf(dy.data) !== dtypeOf(y.data)) {
      throw new NormkitError('grad-shape', `Sigmoid: expected grad_output of shape ${formatShape(y.shape)} and dtype ${dtypeOf(y.data)}, got ${formatShape(dy.shape)} ${dtypeOf(dy.data)}`);
    }
    const dx = allocate(dtypeOf(y.data), y.data.length);
    for (let i = 0; i < dx.length; i++) dx[i] = dy.data[i] * y.data[i] * (1 - y.data[i]);
    return { data: dx, shape: [...y.shape] };
  }

  parameters(): Parameter[] {
    return [];
  }

  zeroGrad(): void {
    // no parameters
  }

  stateDict(): ModuleState {
    return {};
  }

  /** No state: strict (default) refuses every key. */
  loadStateDict(state: ModuleStateInput, options?: { strict?: boolean }): void {
    loadState('Sigmoid', { arrays: new Map() }, state, readStrict('Sigmoid', options));
  }
}
