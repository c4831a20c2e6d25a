/** What every system must compute, from normkit's float64 js kernels (checked against the reference by the test suite). */
import type { NormView } from '../core/layout.js';
import { normView, statsCount } from '../core/layout.js';
import { toChannelsFirst, toChannelsLast } from '../core/transpose.js';
import { jsKernels } from '../kernels/js/norm.js';
import type { FloatArray } from '../core/float.js';
import type { BenchData, Op, ShapeSpec } from './types.js';

export function viewOf(spec: ShapeSpec, layout = spec.layout): NormView {
  if (spec.norm === 'layer') return normView({ kind: 'layer', normalizedRank: 1 }, spec.shape, 'channels-first');
  if (spec.norm === 'group') return normView({ kind: 'group', groups: spec.groups ?? 1 }, spec.shape, layout);
  return normView({ kind: 'batch' }, spec.shape, layout);
}

/** How normkit lays a shape's logical (channels-first) data out in the spec's layout: its view, and the transposes there and back. */
export interface Physical {
  readonly view: NormView;
  readonly arrange: (a: Float32Array) => Float32Array;
  readonly back: (a: FloatArray) => Float32Array;
}

export function physicalOf(spec: ShapeSpec): Physical {
  const last = spec.layout === 'channels-last' && spec.norm !== 'layer';
  const physical = last ? [spec.shape[0], ...spec.shape.slice(2), spec.shape[1]] : spec.shape;
  return {
    view: viewOf({ ...spec, shape: physical }),
    arrange: (a) => (last ? Float32Array.from(toChannelsLast(a, spec.shape).data) : a),
    back: (a) => Float32Array.from(last ? toChannelsFirst(a, physical).data : a),
  };
}

/** The running statistics inference uses, per statistics group of `view`: mean and rstd = 1/sqrt(var + eps). */
export function runningStats(data: BenchData, view: NormView): { mean: Float64Array; rstd: Float64Array } {
  const count = statsCount(view);
  return {
    mean: Float64Array.from({ length: count }, (_, q) => data.runningMean[q % view.groups] ?? 0),
    rstd: Float64Array.from({ length: count }, (_, q) => 1 / Math.sqrt((data.runningVar[q % view.groups] ?? 1) + data.eps)),
  };
}

export type Expected = Readonly<Record<Op, Float64Array>>;

export function expected(data: BenchData): Expected {
  const view = viewOf(data.spec, 'channels-first');
  const n = data.x.length;
  const x = Float64Array.from(data.x);
  const dy = Float64Array.from(data.dy);
  const w = Float64Array.from(data.weight);
  const b = Float64Array.from(data.bias);
  const count = statsCount(view);
  const [mean, variance, rstd] = [new Float64Array(count), new Float64Array(count), new Float64Array(count)];
  const y = new Float64Array(n);
  jsKernels.forwardTrain(y, x, view, w, b, data.eps, mean, variance, rstd);
  const dx = new Float64Array(n);
  jsKernels.backward(dx, null, null, dy, x, view, w, mean, rstd, true);
  const yEval = new Float64Array(n);
  if (data.spec.norm === 'batch') {
    const rm = Float64Array.from(data.runningMean);
    const rr = Float64Array.from(data.runningVar, (v) => 1 / Math.sqrt(v + data.eps));
    jsKernels.forwardWithStats(yEval, x, view, w, b, rm, rr);
  }
  return { forward: y, backward: dx, 'forward+backward': dx, inference: yEval };
}
