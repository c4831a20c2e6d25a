/**
 * The WGSL of the webgpu backend: one module, entry points specialised by override constants.
 * View letters: A blocks, S span, G groups, B run, K affine entries per group, R = B/K, M = S*B.
 *
 * Reductions are two-level: `reduce` gives each workgroup one chunk of one target (a statistics
 * group, or an affine entry) and tree-reduces it into `partials`; `finish` gives each target one
 * workgroup that tree-reduces its chunks. Target t covers `count` loads at
 * (t / D)*C1 + (t % D)*C2 + (r / L)*stride + r % L, r < count.
 *
 * A load is one value, or (module built with lanes 4, where every run of 4 values shares its statistics
 * and affine entry: B and B/K multiples of 4) one vec4: the reduction and elementwise passes then read
 * 16 bytes per invocation, which is what reaches a GPU's memory bandwidth.
 *
 * Float32 accuracy: statistics are sums of d = x - shift with shift a value of the group (no
 * E[x^2] - E[x]^2 on raw data), so mean = shift + E[d] is kept as a hi/lo pair; when the shift lies
 * far from the mean a second pass re-centres on it. xhat = ((x - hi) - lo)*rstd.
 */
export const WORKGROUP = 256;
/** Elements per chunk of a reduction: 16 per invocation before the tree. */
export const CHUNK = WORKGROUP * 16;
/** Targets per workgroup in column reductions (values of a target strided apart, L = 1): 64 columns x 4 row lanes. */
export const COLUMN_TILE = 64;
/** Bytes of one parameter block; a multiple of minUniformBufferOffsetAlignment's largest allowed value. */
export const PARAMS_STRIDE = 256;

/** Reduction modes (override MODE). */
export const Mode = {
  /** sum d, sum d^2 with d = x - (first element of the group). */
  shifted: 0,
  /** sum d, sum d^2 around the first pass's mean, for groups it flagged. */
  recentred: 1,
  /** sum dy*w, sum dy*w*xhat over a statistics group (w = 1 unless the weighted flag is set). */
  group: 2,
  /** sum dy, sum dy*xhat over an affine entry (statistics group per element). */
  affine: 3,
} as const;

/** Which affine gradient affineGrad writes (override MODE). */
export const AffineGrad = { weight: 0, bias: 1 } as const;

/** Params.flags bits. */
export const Flag = { weight: 1, bias: 2, weighted: 4, fused: 8, batchStats: 16 } as const;

/** The module for loads of `lanes` values (1: f32, 4: vec4<f32>). */
export function shaderSource(lanes: 1 | 4): string {
  const V = lanes === 4 ? 'vec4<f32>' : 'f32';
  return /* wgsl */ `
struct Params {
  S: u32, G: u32, B: u32, K: u32,
  R: u32, n: u32, invM: f32, eps: f32,
  targets: u32, D: u32, C1: u32, C2: u32,
  L: u32, count: u32, chunks: u32, flags: u32,
  nx: u32, sumsOffset: u32, stride: u32, pad: u32,
}

alias V = ${V};
const LANES: u32 = ${lanes}u;
const WG: u32 = ${WORKGROUP}u;
const FLAG_WEIGHT: u32 = ${Flag.weight}u;
const FLAG_BIAS: u32 = ${Flag.bias}u;
const FLAG_WEIGHTED: u32 = ${Flag.weighted}u;
const FLAG_FUSED: u32 = ${Flag.fused}u;
const FLAG_BATCH_STATS: u32 = ${Flag.batchStats}u;

override MODE: u32 = 0u;
const SHIFTED: u32 = ${Mode.shifted}u;
const RECENTRED: u32 = ${Mode.recentred}u;
const GROUP: u32 = ${Mode.group}u;
const GRAD_BIAS: u32 = ${AffineGrad.bias}u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> dy: array<V>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
// per statistics group: mean hi, mean lo, rstd, variance (variance < 0 flags a group for re-centring)
@group(0) @binding(5) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> partials: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read_write> sums: array<vec2<f32>>;
@group(0) @binding(8) var<storage, read_write> out: array<V>;

var<workgroup> scratch: array<vec2<f32>, WG>;
var<workgroup> flagged: u32;

fn has(bit: u32) -> bool { return (p.flags & bit) != 0u; }

fn total(v: V) -> f32 { return ${lanes === 4 ? '(v.x + v.y) + (v.z + v.w)' : 'v'}; }

fn first(v: V) -> f32 { return ${lanes === 4 ? 'v.x' : 'v'}; }

// e: memory index of a value (the first of a load)
fn statsIndex(e: u32) -> u32 { return (e / (p.S * p.G * p.B)) * p.G + (e / p.B) % p.G; }

fn affineIndex(e: u32) -> u32 { return ((e / p.B) % p.G) * p.K + (e % p.B) / p.R; }

fn element(t: u32, r: u32) -> u32 { return (t / p.D) * p.C1 + (t % p.D) * p.C2 + (r / p.L) * p.stride + r % p.L; }

fn xhat(i: u32, st: vec4<f32>) -> V { return ((x[i] - st.x) - st.y) * st.z; }

// j: affine index (affineIndex)
fn weightOf(j: u32) -> f32 { return select(1.0, weight[j], has(FLAG_WEIGHT)); }

fn biasOf(j: u32) -> f32 { return select(0.0, bias[j], has(FLAG_BIAS)); }

fn term(t: u32, i: u32, shift: f32) -> vec2<f32> {
  if MODE == SHIFTED || MODE == RECENTRED {
    let d = x[i] - shift;
    return vec2(total(d), total(d * d));
  }
  if MODE == GROUP {
    let g = dy[i] * select(1.0, weightOf(affineIndex(i * LANES)), has(FLAG_WEIGHTED));
    return vec2(total(g), total(g * xhat(i, stats[t])));
  }
  let g = dy[i];
  return vec2(total(g), total(g * xhat(i, stats[statsIndex(i * LANES)])));
}

// what target t's values are summed around: its first value (first pass), or the first pass's mean (re-centring)
fn shiftOf(t: u32) -> f32 {
  if MODE == SHIFTED { return first(x[element(t, 0u)]); }
  if MODE == RECENTRED { return stats[t].x; }
  return 0.0;
}

// loads [x, y) of chunk c of a target
fn chunkRange(c: u32) -> vec2<u32> {
  let chunkLen = (p.count + p.chunks - 1u) / p.chunks;
  let start = c * chunkLen;
  return vec2(start, min(start + chunkLen, p.count));
}

fn treeSum(v: vec2<f32>, lid: u32) -> vec2<f32> {
  scratch[lid] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if lid < half { scratch[lid] = scratch[lid] + scratch[lid + half]; }
    workgroupBarrier();
  }
  return scratch[0];
}

// whether this workgroup's target takes part: every target, except in the re-centring pass
fn takesPart(t: u32, lid: u32) -> bool {
  if MODE != RECENTRED { return true; }
  if lid == 0u { flagged = select(0u, 1u, stats[t].w < 0.0); }
  return workgroupUniformLoad(&flagged) != 0u;
}

@compute @workgroup_size(WG)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wg.x + wg.y * p.nx;
  if w >= p.targets * p.chunks { return; }
  let t = w / p.chunks;
  if !takesPart(t, lid) { return; }
  let shift = shiftOf(t);
  let range = chunkRange(w % p.chunks);
  let start = range.x;
  let end = range.y;
  // element(t, r) = base + (r / L)*stride + r % L, with (r / L, r % L) carried across steps of WG: no division per load
  let base = element(t, 0u);
  let stepRow = WG / p.L;
  let stepCol = WG % p.L;
  var row = (start + lid) / p.L;
  var col = (start + lid) % p.L;
  var acc = vec2(0.0, 0.0);
  for (var r = start + lid; r < end; r += WG) {
    acc += term(t, base + row * p.stride + col, shift);
    row += stepRow;
    col += stepCol;
    if col >= p.L {
      col -= p.L;
      row += 1u;
    }
  }
  let sum = treeSum(acc, lid);
  if lid == 0u { partials[w] = sum; }
}

// L = 1: a target's loads lie stride apart (channels-last statistics, LayerNorm's affine entries). A workgroup
// takes 64 neighbouring targets and 4 row lanes, so each row's 64 reads are contiguous.
@compute @workgroup_size(WG)
fn reduceColumns(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wg.x + wg.y * p.nx;
  let tiles = (p.targets + ${COLUMN_TILE - 1}u) / ${COLUMN_TILE}u;
  if w >= tiles * p.chunks { return; }
  let column = lid % ${COLUMN_TILE}u;
  let lane = lid / ${COLUMN_TILE}u;
  let t = (w / p.chunks) * ${COLUMN_TILE}u + column;
  let live = t < p.targets;
  var acc = vec2(0.0, 0.0);
  // the re-centring pass: only targets the first pass flagged
  if live && (MODE != RECENTRED || stats[t].w < 0.0) {
    let shift = shiftOf(t);
    let range = chunkRange(w % p.chunks);
    let base = element(t, 0u);
    for (var r = range.x + lane; r < range.y; r += WG / ${COLUMN_TILE}u) { acc += term(t, base + r * p.stride, shift); }
  }
  scratch[lid] = acc;
  workgroupBarrier();
  if lane == 0u && live {
    partials[t * p.chunks + w % p.chunks] = (scratch[column] + scratch[column + ${COLUMN_TILE}u]) + (scratch[column + ${2 * COLUMN_TILE}u] + scratch[column + ${3 * COLUMN_TILE}u]);
  }
}

@compute @workgroup_size(WG)
fn finish(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.x + wg.y * p.nx;
  if t >= p.targets { return; }
  if !takesPart(t, lid) { return; }
  var acc = vec2(0.0, 0.0);
  for (var c = lid; c < p.chunks; c += WG) { acc += partials[t * p.chunks + c]; }
  let sum = treeSum(acc, lid);
  if lid != 0u { return; }
  let meanD = sum.x * p.invM;
  // var = E[d^2] - E[d]^2: no cancellation while the shift lies within a few deviations of the mean
  let variance = max(sum.y * p.invM - meanD * meanD, 0.0);
  switch MODE {
    case SHIFTED: {
      let shift = first(x[element(t, 0u)]);
      if meanD * meanD > 4.0 * variance {
        stats[t] = vec4(shift + meanD, 0.0, 0.0, -1.0);
      } else {
        stats[t] = vec4(shift, meanD, 1.0 / sqrt(variance + p.eps), variance);
      }
    }
    case RECENTRED: {
      stats[t] = vec4(stats[t].x, meanD, 1.0 / sqrt(variance + p.eps), variance);
    }
    default: {
      sums[p.sumsOffset + t] = sum;
    }
  }
}

// y = ((x - hi) - lo)*rstd*weight + bias
@compute @workgroup_size(WG)
fn normalize(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * p.nx) * WG + lid;
  if i >= p.n { return; }
  let e = i * LANES;
  let st = stats[statsIndex(e)];
  let j = affineIndex(e);
  out[i] = ((x[i] - st.x) - st.y) * (st.z * weightOf(j)) + biasOf(j);
}

// dx = rstd*(dy*w - sum(dy*w)/M - xhat*sum(dy*w*xhat)/M); fused: the sums are of dy and dy*xhat, w factored out
@compute @workgroup_size(WG)
fn inputGrad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * p.nx) * WG + lid;
  if i >= p.n { return; }
  let e = i * LANES;
  let q = statsIndex(e);
  let st = stats[q];
  let w = weightOf(affineIndex(e));
  if !has(FLAG_BATCH_STATS) {
    out[i] = dy[i] * (w * st.z);
    return;
  }
  let s = sums[q] * p.invM;
  if has(FLAG_FUSED) {
    out[i] = (w * st.z) * fma(-xhat(i, st), V(s.y), dy[i] - s.x);
  } else {
    out[i] = st.z * fma(-xhat(i, st), V(s.y), fma(dy[i], V(w), V(-s.x)));
  }
}

// MODE AffineGrad.weight: dweight = sum(dy*xhat); AffineGrad.bias: dbias = sum(dy); per affine entry, from the sums at sumsOffset (lanes 1 only)
@compute @workgroup_size(WG)
fn affineGrad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = (wg.x + wg.y * p.nx) * WG + lid;
  if j >= p.targets { return; }
  let s = sums[p.sumsOffset + j];
  out[j] = V(select(s.y, s.x, MODE == GRAD_BIAS));
}
`;
}
