/** One error type for every rejected input, with a code that says what kind of input was wrong. */
export type NormkitErrorCode =
  | 'rank'
  | 'channels'
  | 'shape'
  | 'length'
  | 'dtype'
  | 'empty'
  | 'single-value'
  | 'no-forward'
  | 'grad-shape'
  | 'option'
  | 'state-dict'
  | 'non-finite'
  | 'backend'
  | 'disposed'
  | 'fixture';

export class NormkitError extends Error {
  readonly code: NormkitErrorCode;

  constructor(code: NormkitErrorCode, message: string) {
    super(message);
    this.name = 'NormkitError';
    this.code = code;
  }
}
