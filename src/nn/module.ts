/** What every layer with a backward pass offers (normalizations now; Linear and friends later). */
import type { Tensor } from '../tensor.js';
import type { Parameter } from './parameter.js';

export interface Module {
  readonly name: string;
  forward(x: Tensor): Tensor;
  /** dL/dx for dL/dy of the last forward; accumulates parameter gradients. */
  backward(dy: Tensor): Tensor;
  parameters(): Parameter[];
  zeroGrad(): void;
  /** A snapshot of the state (PyTorch keys) and its restore, so a check can leave the module as it was. */
  stateDict(): Readonly<Record<string, ArrayLike<number> | number>>;
  loadStateDict(state: Readonly<Record<string, ArrayLike<number> | number>>): void;
}
