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
 * Accuracy: storage is f32, arithmetic float-float (float-float.ts, about 48 bits) wherever sums,
 * statistics and dx's cancelling terms are formed: per value and across chunks where EXACT (pipelines
 * for small groups, engine.ts), and always for the per-group statistics (mean, variance, rstd). Statistics are sums of d = (x - shift)*2^-e with shift
 * a value of the group and 2^e its magnitude (no E[x^2] - E[x]^2 on raw data; no overflow of d^2 for
 * any finite x); where the shift lies far from the mean, or the values' magnitude far from the shift's,
 * a second pass re-centres on the first pass's mean, scaled by the largest |x|. A group keeps
 * mean (hi, lo) and rstd as (hi, lo)*2^-k, so xhat = ((x - mean)*2^-k)*(rstd*2^k) never overflows.
 */
import { floatFloatWgsl } from './float-float.js';

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

/** Bytes of the Params struct (shader below). */
export const PARAMS_BYTES = 96;

/** The module for loads of `lanes` values (1: f32, 4: vec4<f32>). */
export function shaderSource(lanes: 1 | 4): string {
  const V = lanes === 4 ? 'vec4<f32>' : 'f32';
  const N = lanes === 4 ? 'Q' : 'S';
  return /* wgsl */ `
struct Params {
  S: u32, G: u32, B: u32, K: u32,
  R: u32, n: u32, invM: f32, invMLo: f32,
  targets: u32, D: u32, C1: u32, C2: u32,
  L: u32, count: u32, chunks: u32, flags: u32,
  nx: u32, sumsOffset: u32, stride: u32, zero: u32,
  eps: f32, epsLo: f32, pad0: u32, pad1: u32,
}

alias V = ${V};
alias FV = FF${N};
const LANES: u32 = ${lanes}u;
const WG: u32 = ${WORKGROUP}u;
const FLAG_WEIGHT: u32 = ${Flag.weight}u;
const FLAG_BIAS: u32 = ${Flag.bias}u;
const FLAG_WEIGHTED: u32 = ${Flag.weighted}u;
const FLAG_FUSED: u32 = ${Flag.fused}u;
const FLAG_BATCH_STATS: u32 = ${Flag.batchStats}u;

override MODE: u32 = 0u;
// float-float per value (small groups: dx cancels, and the cost is nothing), or f32 per value, across chunks and in the tree
// (float-float then only for the per-group statistics formed in finish and settle)
override EXACT: bool = true;
const SHIFTED: u32 = ${Mode.shifted}u;
const RECENTRED: u32 = ${Mode.recentred}u;
const GROUP: u32 = ${Mode.group}u;
const GRAD_BIAS: u32 = ${AffineGrad.bias}u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> dy: array<V>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
// per statistics group q: [2q] = (mean hi, mean lo, rstd hi, rstd lo) with rstd scaled by 2^k;
// [2q + 1] = (variance hi, variance lo scaled by 2^-2E, E, k); variance hi < 0 flags the group for re-centring
@group(0) @binding(5) var<storage, read_write> stats: array<vec4<f32>>;
// per chunk: (sum1 hi, sum1 lo, sum2 hi, sum2 lo); in the first statistics pass, after targets*chunks of them, (max |x|, 0, 0, 0)
@group(0) @binding(6) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> sums: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> out: array<V>;

var<workgroup> scratch: array<vec4<f32>, WG>;
var<workgroup> scratchMax: array<f32, WG>;
var<workgroup> flagged: u32;
${floatFloatWgsl(lanes)}
fn has(bit: u32) -> bool { return (p.flags & bit) != 0u; }

fn first(v: V) -> f32 { return ${lanes === 4 ? 'v.x' : 'v'}; }

fn largestLane(v: V) -> f32 { return ${lanes === 4 ? 'max(max(v.x, v.y), max(v.z, v.w))' : 'v'}; }

fn broadcast(a: FFS) -> FV { return FV(V(a.hi), V(a.lo)); }

// the lanes of a float-float load summed into one scalar float-float
fn totalFF(a: FV) -> FFS {
  if !EXACT { return FFS(${lanes === 4 ? '(a.hi.x + a.hi.y) + (a.hi.z + a.hi.w)' : 'a.hi'}, 0.0); }
  let r = renormalize${N}(a);
  return ${lanes === 4 ? 'addS(addS(FFS(r.hi.x, r.lo.x), FFS(r.hi.y, r.lo.y)), addS(FFS(r.hi.z, r.lo.z), FFS(r.hi.w, r.lo.w)))' : 'r'};
}

// two scalar float-floats packed as (a hi, a lo, b hi, b lo), added (f32 where not EXACT)
fn combine(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  if !EXACT { return a + b; }
  let s = addS(FFS(a.x, a.y), FFS(b.x, b.y));
  let t = addS(FFS(a.z, a.w), FFS(b.z, b.w));
  return vec4(s.hi, s.lo, t.hi, t.lo);
}

fn finite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u; }

// e with |v| = f*2^e, 0.5 <= f < 1 (0 for v = 0), kept within +-100 so 2^-e scales stay exact
fn exponentOf(v: f32) -> i32 { return select(clamp(frexp(v).exp, -100, 100), 0, v == 0.0); }

// e: memory index of a value (the first of a load)
fn statsIndex(e: u32) -> u32 { return (e / (p.S * p.G * p.B)) * p.G + (e / p.B) % p.G; }

fn affineIndex(e: u32) -> u32 { return ((e / p.B) % p.G) * p.K + (e % p.B) / p.R; }

fn element(t: u32, r: u32) -> u32 { return (t / p.D) * p.C1 + (t % p.D) * p.C2 + (r / p.L) * p.stride + r % p.L; }

// j: affine index (affineIndex)
fn weightOf(j: u32) -> f32 { return select(1.0, weight[j], has(FLAG_WEIGHT)); }

fn biasOf(j: u32) -> f32 { return select(0.0, bias[j], has(FLAG_BIAS)); }

// what values are centred on and scaled by: d = (x - mean)*2^-k, xhat = d*rstd (rstd scaled by 2^k)
// scale = 2^-k (|k| <= 126, so it is a normal f32 and multiplying by it is exact)
struct Centre { mean: FFS, rstd: FFS, k: i32, scale: f32 }

fn centre(mean: FFS, rstd: FFS, k: i32) -> Centre { return Centre(mean, rstd, k, ldexp(1.0, -k)); }

fn centreOf(q: u32) -> Centre {
  let a = stats[2u * q];
  return centre(FFS(a.x, a.y), FFS(a.z, a.w), i32(stats[2u * q + 1u].w));
}

// per-value arithmetic: float-float where EXACT, else f32 (lo 0, which the compiler then drops)
fn vMul(a: FV, b: FV) -> FV {
  if EXACT { return mul${N}(a, b); }
  return FV(a.hi * b.hi, V(0.0));
}

fn vAdd(a: FV, b: FV) -> FV {
  if EXACT { return add${N}(a, b); }
  return FV(a.hi + b.hi, V(0.0));
}

fn vProd(a: V, b: V) -> FV {
  if EXACT { return twoProd${N}(a, b); }
  return FV(a * b, V(0.0));
}

fn vAccumulate(acc: FV, v: FV) -> FV {
  if EXACT { return accumulate${N}(acc, v); }
  return FV(acc.hi + v.hi, V(0.0));
}

// (v - mean)*2^-k
fn deviation(v: V, c: Centre) -> FV {
  let scaled = v * c.scale;
  if EXACT {
    let t = twoSum${N}(scaled, V(-(c.mean.hi * c.scale)));
    return twoSum${N}(t.hi, keep${N}(t.lo - V(c.mean.lo * c.scale)));
  }
  return FV((scaled - c.mean.hi * c.scale) - c.mean.lo * c.scale, V(0.0));
}

fn xhatFF(v: V, c: Centre) -> FV { return vMul(deviation(v, c), broadcast(c.rstd)); }

// target t's centre: its first value scaled by its magnitude (first pass), the first pass's mean scaled by the largest |x| (re-centring), its statistics (backward)
fn targetCentre(t: u32) -> Centre {
  if MODE == SHIFTED {
    let shift = first(x[element(t, 0u)]);
    return centre(FFS(shift, 0.0), FFS(1.0, 0.0), exponentOf(shift));
  }
  if MODE == RECENTRED {
    let a = stats[2u * t];
    return centre(FFS(a.x, a.y), FFS(1.0, 0.0), i32(stats[2u * t + 1u].z));
  }
  if MODE == GROUP { return centreOf(t); }
  return centre(FFS(0.0, 0.0), FFS(0.0, 0.0), 0);
}

struct Terms { a: FV, b: FV }

// load i's two summands: d and d^2 (statistics), g = dy*w and g*xhat (group), dy and dy*xhat (affine)
fn terms(i: u32, c: Centre) -> Terms {
  if MODE == SHIFTED || MODE == RECENTRED {
    let d = deviation(x[i], c);
    return Terms(d, vMul(d, d));
  }
  var g = FV(dy[i], V(0.0));
  if MODE == GROUP {
    if has(FLAG_WEIGHTED) { g = vProd(dy[i], V(weightOf(affineIndex(i * LANES)))); }
    return Terms(g, vMul(g, xhatFF(x[i], c)));
  }
  return Terms(g, vMul(g, xhatFF(x[i], centreOf(statsIndex(i * LANES)))));
}

fn packed(a: FV, b: FV) -> vec4<f32> {
  let s = totalFF(a);
  let t = totalFF(b);
  return vec4(s.hi, s.lo, t.hi, t.lo);
}

// loads [x, y) of chunk c of a target
fn chunkRange(c: u32) -> vec2<u32> {
  let chunkLen = (p.count + p.chunks - 1u) / p.chunks;
  let start = c * chunkLen;
  return vec2(start, min(start + chunkLen, p.count));
}

// the workgroup's sums (and, in scratchMax[0], its largest |x|)
fn treeSum(v: vec4<f32>, largest: f32, lid: u32) -> vec4<f32> {
  scratch[lid] = v;
  if MODE == SHIFTED { scratchMax[lid] = largest; }
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if lid < half {
      scratch[lid] = combine(scratch[lid], scratch[lid + half]);
      if MODE == SHIFTED { scratchMax[lid] = max(scratchMax[lid], scratchMax[lid + half]); }
    }
    workgroupBarrier();
  }
  return scratch[0];
}

// whether this workgroup's target takes part: every target, except in the re-centring pass
fn takesPart(t: u32, lid: u32) -> bool {
  if MODE != RECENTRED { return true; }
  if lid == 0u { flagged = select(0u, 1u, stats[2u * t + 1u].x < 0.0); }
  return workgroupUniformLoad(&flagged) != 0u;
}

@compute @workgroup_size(WG)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wg.x + wg.y * p.nx;
  if w >= p.targets * p.chunks { return; }
  let t = w / p.chunks;
  if !takesPart(t, lid) { return; }
  let c = targetCentre(t);
  let range = chunkRange(w % p.chunks);
  let start = range.x;
  let end = range.y;
  // element(t, r) = base + (r / L)*stride + r % L, with (r / L, r % L) carried across steps of WG: no division per load
  let base = element(t, 0u);
  let stepRow = WG / p.L;
  let stepCol = WG % p.L;
  var row = (start + lid) / p.L;
  var col = (start + lid) % p.L;
  var a = FV(V(0.0), V(0.0));
  var b = FV(V(0.0), V(0.0));
  var largest = 0.0;
  for (var r = start + lid; r < end; r += WG) {
    let i = base + row * p.stride + col;
    let s = terms(i, c);
    a = vAccumulate(a, s.a);
    b = vAccumulate(b, s.b);
    if MODE == SHIFTED { largest = max(largest, largestLane(abs(x[i]))); }
    row += stepRow;
    col += stepCol;
    if col >= p.L {
      col -= p.L;
      row += 1u;
    }
  }
  let sum = treeSum(packed(a, b), largest, lid);
  if lid == 0u {
    partials[w] = sum;
    if MODE == SHIFTED { partials[p.targets * p.chunks + w] = vec4(scratchMax[0], 0.0, 0.0, 0.0); }
  }
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
  var a = FV(V(0.0), V(0.0));
  var b = FV(V(0.0), V(0.0));
  var largest = 0.0;
  // the re-centring pass: only targets the first pass flagged
  if live && (MODE != RECENTRED || stats[2u * t + 1u].x < 0.0) {
    let c = targetCentre(t);
    let range = chunkRange(w % p.chunks);
    let base = element(t, 0u);
    for (var r = range.x + lane; r < range.y; r += WG / ${COLUMN_TILE}u) {
      let i = base + r * p.stride;
      let s = terms(i, c);
      a = vAccumulate(a, s.a);
      b = vAccumulate(b, s.b);
      if MODE == SHIFTED { largest = max(largest, largestLane(abs(x[i]))); }
    }
  }
  scratch[lid] = packed(a, b);
  if MODE == SHIFTED { scratchMax[lid] = largest; }
  workgroupBarrier();
  if lane == 0u && live {
    let at = t * p.chunks + w % p.chunks;
    partials[at] = combine(combine(scratch[column], scratch[column + ${COLUMN_TILE}u]), combine(scratch[column + ${2 * COLUMN_TILE}u], scratch[column + ${3 * COLUMN_TILE}u]));
    if MODE == SHIFTED {
      let m = max(max(scratchMax[column], scratchMax[column + ${COLUMN_TILE}u]), max(scratchMax[column + ${2 * COLUMN_TILE}u], scratchMax[column + ${3 * COLUMN_TILE}u]));
      partials[p.targets * p.chunks + at] = vec4(m, 0.0, 0.0, 0.0);
    }
  }
}

// a group's statistics from its mean, its variance scaled by 2^-2e, and e: rstd = 1/sqrt(variance + eps) in float-float,
// computed at the scale 2^kk of the larger of the standard deviation and sqrt(eps), and stored as (hi, lo)*2^-k with hi in [1, 2)
fn settle(t: u32, mean: FFS, scaledVariance: FFS, e: i32) {
  var v = scaledVariance;
  if v.hi <= 0.0 { v = FFS(0.0, 0.0); }
  let eps = FFS(p.eps, p.epsLo);
  let kVar = select(-1000, e + frexp(v.hi).exp / 2, v.hi > 0.0);
  let kEps = select(-1000, frexp(p.eps).exp / 2, p.eps > 0.0);
  let kk = max(kVar, kEps);
  let r = rsqrtS(addS(scaleS(v, 2 * (e - kk)), scaleS(eps, -2 * kk)));
  let k = clamp(kk + 1 - frexp(r.hi).exp, -126, 126);
  let rstd = scaleS(r, k - kk);
  stats[2u * t] = vec4(mean.hi, mean.lo, rstd.hi, rstd.lo);
  stats[2u * t + 1u] = vec4(v.hi, v.lo, f32(e), f32(k));
}

@compute @workgroup_size(WG)
fn finish(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.x + wg.y * p.nx;
  if t >= p.targets { return; }
  if !takesPart(t, lid) { return; }
  var acc = vec4(0.0, 0.0, 0.0, 0.0);
  var largest = 0.0;
  for (var c = lid; c < p.chunks; c += WG) {
    acc = combine(acc, partials[t * p.chunks + c]);
    if MODE == SHIFTED { largest = max(largest, partials[p.targets * p.chunks + t * p.chunks + c].x); }
  }
  let sum = treeSum(acc, largest, lid);
  if lid != 0u { return; }
  if MODE != SHIFTED && MODE != RECENTRED {
    sums[p.sumsOffset + t] = sum;
    return;
  }
  let centre = targetCentre(t);
  let invM = FFS(p.invM, p.invMLo);
  let meanD = mulS(FFS(sum.x, sum.y), invM);
  // var = E[d^2] - E[d]^2: no cancellation while the centre lies within a few deviations of the mean
  let variance = addS(mulS(FFS(sum.z, sum.w), invM), negS(mulS(meanD, meanD)));
  let mean = addS(centre.mean, scaleS(meanD, centre.k));
  if MODE == RECENTRED {
    settle(t, mean, variance, centre.k);
    return;
  }
  // re-centre where the first value lies far from the mean (E[d^2] - E[d]^2 would cancel) or far in magnitude
  // from the largest (d^2 could overflow or underflow): on this mean where it is finite, else on 0
  let maxAbs = scratchMax[0];
  let far = maxAbs > 0.0 && abs(frexp(maxAbs).exp - centre.k) > 40;
  if far || meanD.hi * meanD.hi > 4.0 * variance.hi {
    let usable = finite(mean.hi) && finite(mean.lo);
    stats[2u * t] = select(vec4(0.0), vec4(mean.hi, mean.lo, 0.0, 0.0), usable);
    stats[2u * t + 1u] = vec4(-1.0, 0.0, f32(exponentOf(maxAbs)), 0.0);
  } else {
    settle(t, mean, variance, centre.k);
  }
}

// y = xhat*weight + bias, xhat = ((x - mean)*2^-k)*(rstd*2^k)
@compute @workgroup_size(WG)
fn normalize(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * p.nx) * WG + lid;
  if i >= p.n { return; }
  let e = i * LANES;
  let c = centreOf(statsIndex(e));
  let j = affineIndex(e);
  out[i] = value${N}(deviation(x[i], c)) * (c.rstd.hi * weightOf(j)) + biasOf(j);
}

// dx = rstd*(g - sum(g)/M - xhat*sum(g*xhat)/M), g = dy*w, in float-float up to the last product (the terms cancel);
// fused: the sums are of dy and dy*xhat, and w multiplies the result
@compute @workgroup_size(WG)
fn inputGrad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * p.nx) * WG + lid;
  if i >= p.n { return; }
  let e = i * LANES;
  let q = statsIndex(e);
  let c = centreOf(q);
  let w = weightOf(affineIndex(e));
  if !has(FLAG_BATCH_STATS) {
    out[i] = dy[i] * (c.rstd.hi * w) * c.scale;
    return;
  }
  let s = sums[q];
  let invM = FFS(p.invM, p.invMLo);
  // the reference's terms over rstd: dxTerm1 = g, dxTerm2 = -xhat*mean(g*xhat) (the x̂ term), dxTerm3 = -mean(g) (the mean term)
  let meanG = mulS(FFS(s.x, s.y), invM);
  let meanGX = mulS(FFS(s.z, s.w), invM);
  var g = FV(dy[i], V(0.0));
  if !has(FLAG_FUSED) { g = vProd(dy[i], V(w)); }
  let xhatMeanGX = vMul(xhatFF(x[i], c), broadcast(meanGX));
  let inner = vAdd(vAdd(g, broadcast(negS(meanG))), neg${N}(xhatMeanGX));
  out[i] = value${N}(inner) * select(c.rstd.hi, c.rstd.hi * w, has(FLAG_FUSED)) * c.scale;
}

// MODE AffineGrad.weight: dweight = sum(dy*xhat); AffineGrad.bias: dbias = sum(dy); per affine entry, from the sums at sumsOffset (lanes 1 only)
@compute @workgroup_size(WG)
fn affineGrad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = (wg.x + wg.y * p.nx) * WG + lid;
  if j >= p.targets { return; }
  let s = sums[p.sumsOffset + j];
  out[j] = V(select(s.z + s.w, s.x + s.y, MODE == GRAD_BIAS));
}
`;
}
