/** What every layer with a backward pass offers: normalizations, Linear, Sigmoid, Sequential. */
import type { FloatArray, Tensor } from '../tensor.js';
import type { Parameter } from './parameter.js';

/** A state dict: PyTorch key names to arrays (copies) or numbers. */
export type ModuleState = Record<string, FloatArray | number>;
/** What loadStateDict accepts: arrays of numbers or typed arrays, numbers for counters. */
export type ModuleStateInput = Readonly<Record<string, ArrayLike<number> | number>>;

export interface Module {
  readonly name: string;
  forward(x: Tensor): Tensor;
  /** dL/dx for dL/dy of the last forward; accumulates parameter gradients. */
  backward(dy: Tensor): Tensor;
  parameters(): Parameter[];
  zeroGrad(): void;
  /** A snapshot of the state (PyTorch keys) and its restore, so a check can leave the module as it was. */
  stateDict(): ModuleState;
  /** Loads through nn/state.ts: strict (default) refuses missing and unexpected keys. */
  loadStateDict(state: ModuleStateInput, options?: { strict?: boolean }): void;
  /** Training or eval mode, for modules that behave differently (normalizations). */
  train?(mode?: boolean): unknown;
}
