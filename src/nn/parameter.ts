/** A trainable tensor and its accumulated gradient. */
import type { DType, FloatArray } from '../core/float.js';
import { allocate } from '../tensor.js';
import { numel } from '../core/float.js';

export class Parameter {
  readonly name: string;
  readonly data: FloatArray;
  readonly grad: FloatArray;
  readonly shape: readonly number[];
  /** false freezes it (PyTorch's requires_grad): backward accumulates nothing into grad and SGD skips it. */
  requiresGrad = true;

  constructor(name: string, dtype: DType, shape: readonly number[], fill: number) {
    this.name = name;
    this.shape = [...shape];
    const n = numel(shape);
    this.data = allocate(dtype, n).fill(fill);
    this.grad = allocate(dtype, n);
  }

  /** grad += delta, elementwise (gradients accumulate across backward calls, as in PyTorch). */
  accumulate(delta: FloatArray): void {
    if (!this.requiresGrad) return;
    for (let i = 0; i < delta.length; i++) this.grad[i] += delta[i];
  }

  zeroGrad(): void {
    this.grad.fill(0);
  }
}
