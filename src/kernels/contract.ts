/** The kernel contract every backend implements: the reference, `js`, and later `wasm`, `webgpu`. */
import type { NormView } from '../core/layout.js';
import type { DType, FloatArray } from '../core/float.js';

export type BackendName = 'reference' | 'js' | 'wasm' | 'webgpu';

/**
 * Shapes: x, y, dy, dx hold A*S*G*B elements in memory order; mean, variance, rstd hold A*G
 * statistics; weight, bias, dweight, dbias hold G*K affine entries (null: no affine, weight 1, bias 0).
 * Outputs come first and are overwritten.
 */
export interface NormKernels {
  readonly name: BackendName;
  /** The dtypes it computes in (webgpu: float32 only). */
  readonly dtypes: readonly DType[];
  /** Training forward: batch mean, biased variance and rstd = 1/sqrt(variance + eps), then y. */
  forwardTrain(
    y: FloatArray,
    x: FloatArray,
    view: NormView,
    weight: FloatArray | null,
    bias: FloatArray | null,
    eps: number,
    mean: Float64Array,
    variance: Float64Array,
    rstd: Float64Array,
  ): void;
  /** Forward with given statistics (eval with running statistics): y = (x - mean)*rstd*weight + bias. */
  forwardWithStats(
    y: FloatArray,
    x: FloatArray,
    view: NormView,
    weight: FloatArray | null,
    bias: FloatArray | null,
    mean: Float64Array,
    rstd: Float64Array,
  ): void;
  /**
   * Backward from dy. With batchStats the statistics are functions of x (training); without,
   * they are constants (eval) and dx = dy*weight*rstd.
   */
  backward(
    dx: FloatArray,
    dweight: FloatArray | null,
    dbias: FloatArray | null,
    dy: FloatArray,
    x: FloatArray,
    view: NormView,
    weight: FloatArray | null,
    mean: Float64Array,
    rstd: Float64Array,
    batchStats: boolean,
  ): void;
}

/** The same contract with results that arrive later (webgpu where no thread may block: browsers). */
export type AsyncNormKernels = { readonly name: BackendName; readonly dtypes: readonly DType[] } & {
  readonly [K in 'forwardTrain' | 'forwardWithStats' | 'backward']: (...args: Parameters<NormKernels[K]>) => Promise<void>;
};
