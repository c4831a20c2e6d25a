/** The fixtures' comparison rule (shared/fixtures/README.md). */
import type { DType } from '../core/float.js';

/** max|a - t| / max(max|t|, 1e-12); NaN when a holds NaN or the lengths differ. */
export function normalizedError(actual: ArrayLike<number>, truth: ArrayLike<number>): number {
  if (actual.length !== truth.length) return Number.NaN;
  let maxDiff = 0;
  let maxTruth = 0;
  for (let i = 0; i < truth.length; i++) {
    const diff = Math.abs(actual[i] - truth[i]);
    if (Number.isNaN(diff)) return Number.NaN;
    maxDiff = Math.max(maxDiff, diff);
    maxTruth = Math.max(maxTruth, Math.abs(truth[i]));
  }
  return maxDiff / Math.max(maxTruth, 1e-12);
}

/** A tensor conforms when its error is at most max(floor, 2 x PyTorch's error). */
export function conformanceBound(dtype: DType, torchError: number): number {
  return Math.max(dtype === 'float32' ? 1e-5 : 1e-10, 2 * torchError);
}

/** PyTorch prints sizes as torch.Size([1, 3]); normkit as [1, 3]. */
export function normalizeErrorText(text: string): string {
  return text.replace(/torch\.Size\((\[[^\]]*\])\)/g, '$1');
}
