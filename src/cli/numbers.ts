/** The CLI's numeric flags, each checked against a stated range: a user's mistake is one line, never a hang or an internal error. */
import { NormkitError } from '../errors.js';

/** The most of each count a command runs (a larger one would run for hours or take more memory than a machine has). */
export const flagLimits = {
  cases: 1000,
  reps: 1000,
  loads: 100,
  steps: 100_000,
  every: 100_000,
  lr: 100,
} as const;

/** `text` as an integer in [min, max], else an 'option' NormkitError naming the flag and the range. */
export function integerFlag(flag: string, text: string, min: number, max: number): number {
  const value = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new NormkitError('option', `${flag} must be an integer from ${min} to ${max}, got ${text}`);
  }
  return value;
}

/** `text` as a finite number in (0, max], else an 'option' NormkitError naming the flag and the range. */
export function positiveNumberFlag(flag: string, text: string, max: number): number {
  const value = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    throw new NormkitError('option', `${flag} must be a finite number > 0 and at most ${max}, got ${text}`);
  }
  return value;
}
