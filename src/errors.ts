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
  | 'fixture'
  /** a size past what normkit can allocate or index */
  | 'size'
  /** an output sharing memory with an input or with the layer's own arrays */
  | 'alias'
  /** an input saved for backward was overwritten in place after forward */
  | 'modified'
  /** a mask that does not fit its input (shape, values) */
  | 'mask'
  /** a tensor used after dispose() */
  | 'disposed';

export class NormkitError extends Error {
  readonly code: NormkitErrorCode;

  constructor(code: NormkitErrorCode, message: string) {
    super(message);
    this.name = 'NormkitError';
    this.code = code;
  }
}
