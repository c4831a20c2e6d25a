/** The value counts of the arrays a layer allocates, for the byte limits of core/limits.ts (checked before any allocation). */
import { checkLayerBytes } from '../core/limits.js';
import { numel } from '../tensor.js';

export { checkLayerBytes };

/** A normalization's own arrays: weight, bias, their gradients and backward scratch; running mean and variance. */
export function layerArrays(setup: { readonly affineShape: readonly number[] | null; readonly runningFeatures: number | null }): number[] {
  const affine = setup.affineShape === null ? 0 : numel(setup.affineShape);
  const running = setup.runningFeatures ?? 0;
  return [affine, affine, affine, affine, affine, affine, running, running];
}
