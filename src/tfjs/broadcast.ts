/**
 * The shapes tfjs passes to FusedBatchNorm: x (rank 4 after tf.batchNorm's reshape, or 5+) with mean,
 * variance, scale and offset of shape [C] (channels last), [1, C, 1, 1] (tf.layers with axis 1) or x's
 * whole shape (tf.layers.layerNormalization). Each broadcasts right-aligned, as tfjs's ops define; where
 * every parameter varies along the same run of x's axes, the call is one normkit view.
 */
import type { NormView } from '../core/layout.js';
import { formatShape, numel } from '../tensor.js';

/** The run of x's axes [first, end) along which a parameter varies; 'scalar' where it varies along none. */
type Span = { readonly first: number; readonly end: number } | 'scalar';

/** Where `param` varies along x, or the reason it does not broadcast to x as one run of axes. */
function spanOf(x: readonly number[], param: readonly number[]): Span | { readonly reason: string } {
  if (param.length > x.length) return { reason: `rank ${param.length} above x's ${x.length}` };
  const offset = x.length - param.length;
  const varying: number[] = [];
  for (let i = 0; i < param.length; i++) {
    if (param[i] === 1) continue;
    if (param[i] !== x[offset + i]) return { reason: `${formatShape(param)} does not broadcast to x ${formatShape(x)}` };
    varying.push(offset + i);
  }
  if (varying.length === 0) return 'scalar';
  const first = varying[0];
  const end = varying[varying.length - 1] + 1;
  if (end - first !== varying.length) return { reason: `${formatShape(param)} varies along axes that are not adjacent` };
  return { first, end };
}

/**
 * The normkit view for x and the given parameter shapes (absent ones: undefined), or the reason there is
 * none. Scalars (every dim 1) join any run; parameters along different runs do not fit one view.
 */
export function paramView(x: readonly number[], params: readonly (readonly number[] | undefined)[]): NormView | string {
  let run: { first: number; end: number } | null = null;
  for (const shape of params) {
    if (shape === undefined) continue;
    const span = spanOf(x, shape);
    if (span === 'scalar') continue;
    if ('reason' in span) return span.reason;
    if (run !== null && (run.first !== span.first || run.end !== span.end)) return 'parameters vary along different axes';
    run = span;
  }
  const { first, end } = run ?? { first: x.length, end: x.length };
  // parameters have one entry per group: span = the axes before the run, inner = the axes after it
  return { outer: 1, span: numel(x.slice(0, first)), groups: numel(x.slice(first, end)), inner: numel(x.slice(end)), affinePerGroup: 1 };
}

/** The view of a training call: statistics per index of `axis`, over every other axis. */
export function axisView(x: readonly number[], axis: number): NormView {
  return { outer: 1, span: numel(x.slice(0, axis)), groups: x[axis], inner: numel(x.slice(axis + 1)), affinePerGroup: 1 };
}

/** `values` (one entry, or one per group) as one entry per group. */
export function perGroup(values: Float32Array, groups: number): Float32Array {
  return values.length === groups ? values : new Float32Array(groups).fill(values[0]);
}
