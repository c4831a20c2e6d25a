/**
 * Stochastic gradient descent with PyTorch's options (torch.optim.SGD): weight decay, momentum with
 * dampening, and Nesterov momentum, for every parameter that requires a gradient. Per step, with
 * g = grad + weightDecay*p: buf = g on the first step, then buf = momentum*buf + (1 - dampening)*g;
 * g = g + momentum*buf with nesterov, else g = buf; p -= lr*g.
 */
import { NormkitError } from '../errors.js';
import { describeValue } from '../tensor.js';
import { readOptions } from './options.js';
import { Parameter } from './parameter.js';
import { noteWrite } from './saved.js';

export interface SGDOptions {
  readonly lr: number;
  /** Default 0 (plain SGD). */
  readonly momentum?: number;
  /** Default 0. */
  readonly dampening?: number;
  /** L2 penalty added to the gradient. Default 0. */
  readonly weightDecay?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  readonly nesterov?: boolean;
}

function nonNegative(what: string, value: unknown, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new NormkitError('option', `SGD: ${what} must be a finite number >= 0, got ${describeValue(v)}`);
  return v;
}

export class SGD {
  readonly params: readonly Parameter[];
  readonly lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  /** Each parameter's momentum buffer (float64), made on its first step. */
  readonly #buffers: (Float64Array | null)[];

  constructor(params: readonly Parameter[], options: SGDOptions) {
    // a JavaScript caller can pass anything: the list copied once, each entry checked
    const given: unknown = params;
    if (!Array.isArray(given)) throw new NormkitError('option', `SGD: expected params as an array of Parameter (model.parameters()), got ${describeValue(given)}`);
    const list: unknown[] = Array.from(given as unknown[]);
    list.forEach((p, i) => {
      if (!(p instanceof Parameter)) throw new NormkitError('option', `SGD: expected params as an array of Parameter, got ${describeValue(p)} at index ${i}`);
    });
    const read = readOptions('SGD', options, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov']);
    const { lr } = read;
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0) throw new NormkitError('option', `SGD: lr must be a finite number > 0, got ${describeValue(lr)}`);
    this.lr = lr;
    this.momentum = nonNegative('momentum', read.momentum, 0);
    this.dampening = nonNegative('dampening', read.dampening, 0);
    this.weightDecay = nonNegative('weightDecay', read.weightDecay, 0);
    const nesterov = read.nesterov ?? false;
    if (typeof nesterov !== 'boolean') throw new NormkitError('option', `SGD: nesterov must be true or false, got ${describeValue(nesterov)}`);
    if (nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new NormkitError('option', `SGD: Nesterov momentum requires a momentum > 0 and zero dampening, got momentum ${this.momentum}, dampening ${this.dampening}`);
    }
    this.nesterov = nesterov;
    this.params = list.filter((p): p is Parameter => p instanceof Parameter);
    this.#buffers = this.params.map(() => null);
  }

  step(): void {
    const { lr, momentum, dampening, weightDecay, nesterov } = this;
    this.params.forEach((p, k) => {
      if (!p.requiresGrad) return;
      const { data, grad } = p;
      let buf = this.#buffers[k];
      const first = buf === null;
      if (momentum !== 0 && buf === null) {
        buf = new Float64Array(data.length);
        this.#buffers[k] = buf;
      }
      for (let i = 0; i < data.length; i++) {
        let g = grad[i] + weightDecay * data[i];
        if (buf !== null) {
          // torch: the first step's buffer is the gradient itself (no dampening)
          buf[i] = first ? g : momentum * buf[i] + (1 - dampening) * g;
          g = nesterov ? g + momentum * buf[i] : buf[i];
        }
        data[i] -= lr * g;
      }
      noteWrite(data);
    });
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }
}
