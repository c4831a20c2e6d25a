/** Linear (PyTorch semantics): y = x W^T + b with W of shape (out, in); rows of x are samples. */
import { NormkitError } from '../errors.js';
import { Random } from '../random.js';
import { checkUsable } from '../core/memory.js';
import type { DType, FloatArray, Tensor } from '../tensor.js';
import { allocate, checkDType, describeValue, dtypeOf, formatShape, readTensor } from '../tensor.js';
import { checkLayerBytes } from './limits.js';
import type { Module, ModuleState, ModuleStateInput } from './module.js';
import { checkBoolean, checkPositiveInteger, readOptions } from './options.js';
import { Parameter } from './parameter.js';
import { loadState, parameterSpec, parameterState, readStrict } from './state.js';

export interface LinearOptions {
  readonly bias?: boolean;
  readonly dtype?: DType;
  /** Seed of the initialization U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's bound). Default 0. */
  readonly seed?: number;
}

export class Linear implements Module {
  readonly name = 'Linear';
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly dtype: DType;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  #x: Tensor | null = null;

  constructor(inFeatures: number, outFeatures: number, options?: LinearOptions) {
    this.inFeatures = checkPositiveInteger('Linear', 'inFeatures', inFeatures);
    this.outFeatures = checkPositiveInteger('Linear', 'outFeatures', outFeatures);
    // each option read once (a getter could change its value between reads)
    const given = readOptions('Linear', options, ['bias', 'dtype', 'seed']);
    const dtype = checkDType('Linear', given.dtype ?? 'float32');
    const withBias = checkBoolean('Linear', 'bias', given.bias ?? true);
    const seed = given.seed ?? 0;
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) throw new NormkitError('option', `Linear: seed must be an integer, got ${describeValue(seed)}`);
    const [I, O] = [this.inFeatures, this.outFeatures];
    // weight, bias and their gradients, checked in bytes before any is allocated
    checkLayerBytes('Linear', withBias ? [I * O, I * O, O, O] : [I * O, I * O], dtype);
    this.dtype = dtype;
    this.weight = new Parameter('weight', dtype, [O, I], 0);
    this.bias = withBias ? new Parameter('bias', dtype, [O], 0) : null;
    const random = new Random(seed);
    const bound = 1 / Math.sqrt(I);
    for (let i = 0; i < this.weight.data.length; i++) this.weight.data[i] = (2 * random.next() - 1) * bound;
    if (this.bias) for (let i = 0; i < O; i++) this.bias.data[i] = (2 * random.next() - 1) * bound;
  }

  parameters(): Parameter[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** `t` read once (readTensor: a plain view and a copy of its shape, not disposed) and checked as [N, features]. */
  #read(t: unknown, what: string, features: number): Tensor {
    const read = readTensor(t, `Linear: ${what}`);
    const got = dtypeOf(read.data);
    if (got !== this.dtype) throw new NormkitError('dtype', `Linear: expected ${what} of dtype ${this.dtype}, got ${got}`);
    if (read.shape.length !== 2 || read.shape[1] !== features) {
      throw new NormkitError('shape', `Linear: expected ${what} of shape [N, ${features}], got ${formatShape(read.shape)}`);
    }
    return read;
  }

  forward(x: Tensor): Tensor {
    const input = this.#read(x, 'input', this.inFeatures);
    const n = input.shape[0];
    const [I, O] = [this.inFeatures, this.outFeatures];
    const w = this.weight.data;
    const b = this.bias?.data ?? null;
    const xd = input.data;
    const y = allocate(this.dtype, n * O);
    // y[r, o] = b[o] + sum_i x[r, i] w[o, i]: two contiguous rows per dot product, four partial sums
    for (let r = 0; r < n; r++) {
      const xr = r * I;
      for (let o = 0; o < O; o++) {
        const wo = o * I;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let i = 0;
        for (; i + 4 <= I; i += 4) {
          s0 += xd[xr + i] * w[wo + i];
          s1 += xd[xr + i + 1] * w[wo + i + 1];
          s2 += xd[xr + i + 2] * w[wo + i + 2];
          s3 += xd[xr + i + 3] * w[wo + i + 3];
        }
        for (; i < I; i++) s0 += xd[xr + i] * w[wo + i];
        y[r * O + o] = (b === null ? 0 : b[o]) + (s0 + s1 + (s2 + s3));
      }
    }
    this.#x = input;
    return { data: y, shape: [n, O] };
  }

  backward(dy: Tensor): Tensor {
    const x = this.#x;
    if (x === null) throw new NormkitError('no-forward', 'Linear: backward called before forward');
    const grad = this.#read(dy, 'grad_output', this.outFeatures);
    const n = grad.shape[0];
    if (n !== x.shape[0]) throw new NormkitError('grad-shape', `Linear: expected grad_output of shape [${x.shape[0]}, ${this.outFeatures}], got ${formatShape(grad.shape)}`);
    checkUsable(x.data, 'Linear: the input saved by forward');
    const [I, O] = [this.inFeatures, this.outFeatures];
    const w = this.weight.data;
    const dw = this.weight.grad;
    const db = this.bias?.grad ?? null;
    const dx: FloatArray = allocate(this.dtype, n * I);
    const xd = x.data;
    const dyd = grad.data;
    // rows accumulate in float64 scratch and are written once (typed-array stores convert)
    const row = new Float64Array(I);
    // dx[r, :] = sum_o dy[r, o] W[o, :]
    for (let r = 0; r < n; r++) {
      row.fill(0);
      for (let o = 0; o < O; o++) {
        const g = dyd[r * O + o];
        const wo = o * I;
        for (let i = 0; i < I; i++) row[i] += g * w[wo + i];
      }
      dx.set(row, r * I);
    }
    // dW[o, :] += sum_r dy[r, o] x[r, :] ; db[o] += sum_r dy[r, o]
    for (let o = 0; o < O; o++) {
      row.fill(0);
      let sum = 0;
      for (let r = 0; r < n; r++) {
        const g = dyd[r * O + o];
        sum += g;
        const xr = r * I;
        for (let i = 0; i < I; i++) row[i] += g * xd[xr + i];
      }
      const wo = o * I;
      if (this.weight.requiresGrad) for (let i = 0; i < I; i++) dw[wo + i] += row[i];
      if (db !== null && this.bias?.requiresGrad === true) db[o] += sum;
    }
    return { data: dx, shape: [n, I] };
  }

  stateDict(): ModuleState {
    return parameterState(this.parameters());
  }

  loadStateDict(state: ModuleStateInput, options?: { strict?: boolean }): void {
    loadState('Linear', parameterSpec(this.parameters()), state, readStrict('Linear', options));
  }
}
