/** Plain stochastic gradient descent: p -= lr * grad, for every parameter that requires a gradient. */
import { NormkitError } from '../errors.js';
import type { Parameter } from './parameter.js';
import { noteWrite } from './saved.js';

export class SGD {
  readonly params: readonly Parameter[];
  readonly lr: number;

  constructor(params: readonly Parameter[], options: { lr: number }) {
    if (!(options.lr > 0) || !Number.isFinite(options.lr)) throw new NormkitError('option', `SGD: lr must be a finite number > 0, got ${options.lr}`);
    this.params = params;
    this.lr = options.lr;
  }

  step(): void {
    for (const p of this.params) {
      if (!p.requiresGrad) continue;
      for (let i = 0; i < p.data.length; i++) p.data[i] -= this.lr * p.grad[i];
      noteWrite(p.data);
    }
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }
}
