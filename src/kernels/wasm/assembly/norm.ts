// AssemblyScript kernels for the wasm backend (compiled by scripts/build-wasm.mjs with SIMD, and with
// threads over shared memory). One generic source for float32 and float64: elements are widened to
// f64x2 lanes, so every sum and every difference x - mean is taken in float64. Large float32 groups
// take the `fast` path instead: f32x4 lanes over short blocks flushed into float64 sums, the mean
// subtracted as hi/lo float32 parts.
//
// View letters as in core/layout.ts: A blocks, S span, G groups, B run, K affine entries per group,
// R = B/K, M = S*B. Statistics and partial sums are f64 arrays.
// Group mode (here) walks one statistics group at a time (runs of B contiguous values, B large);
// row mode (rows.ts) walks rows of cols = G*B contiguous values (channels-last, B small) with SIMD across columns.

import { hsum, load1, load2, rstdHolds, store1, store2, varianceHolds } from './lanes';

export * from './rows';

// second result of a two-value reduction (per instance, so per thread)
let second: f64 = 0;


// ---- runs: n contiguous values ----

/** sum x over a run */
function sumRun<T>(x: usize, n: i32): f64 {
  let acc0 = f64x2.splat(0);
  let acc1 = f64x2.splat(0);
  let i = 0;
  const step = <usize>sizeof<T>();
  for (; i + 4 <= n; i += 4) {
    const p = x + <usize>i * step;
    acc0 = f64x2.add(acc0, load2<T>(p));
    acc1 = f64x2.add(acc1, load2<T>(p + 2 * step));
  }
  let sum = hsum(f64x2.add(acc0, acc1));
  for (; i < n; i++) sum += load1<T>(x + <usize>i * step);
  return sum;
}

/** sum d^2 (returned) and sum d (in `second`) over a run, d = x - mean (exact near the mean) */
function centredMomentsRun<T>(x: usize, n: i32, mean: f64): f64 {
  const m = f64x2.splat(mean);
  let acc0 = f64x2.splat(0);
  let acc1 = f64x2.splat(0);
  let sum0 = f64x2.splat(0);
  let sum1 = f64x2.splat(0);
  let i = 0;
  const step = <usize>sizeof<T>();
  for (; i + 4 <= n; i += 4) {
    const p = x + <usize>i * step;
    const d0 = f64x2.sub(load2<T>(p), m);
    const d1 = f64x2.sub(load2<T>(p + 2 * step), m);
    sum0 = f64x2.add(sum0, d0);
    sum1 = f64x2.add(sum1, d1);
    acc0 = f64x2.add(acc0, f64x2.mul(d0, d0));
    acc1 = f64x2.add(acc1, f64x2.mul(d1, d1));
  }
  let sq = hsum(f64x2.add(acc0, acc1));
  let sum = hsum(f64x2.add(sum0, sum1));
  for (; i < n; i++) {
    const d = load1<T>(x + <usize>i * step) - mean;
    sum += d;
    sq += d * d;
  }
  second = sum;
  return sq;
}

/** sum (x - mean) over a run */
function centredSumRun<T>(x: usize, n: i32, mean: f64): f64 {
  const m = f64x2.splat(mean);
  let acc = f64x2.splat(0);
  let i = 0;
  const step = <usize>sizeof<T>();
  for (; i + 2 <= n; i += 2) acc = f64x2.add(acc, f64x2.sub(load2<T>(x + <usize>i * step), m));
  let sum = hsum(acc);
  for (; i < n; i++) sum += load1<T>(x + <usize>i * step) - mean;
  return sum;
}

/** y = ((x - mean) - lo)*scale*w + (b or shift): w, b per value (0: absent, then w = 1 and shift is added) */
function affineRun<T>(y: usize, x: usize, w: usize, b: usize, n: i32, mean: f64, lo: f64, scale: f64, shift: f64): void {
  const m = f64x2.splat(mean);
  const l = f64x2.splat(lo);
  const a = f64x2.splat(scale);
  const c = f64x2.splat(shift);
  let i = 0;
  const step = <usize>sizeof<T>();
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i * step;
    let t = f64x2.mul(f64x2.sub(f64x2.sub(load2<T>(x + o), m), l), a);
    if (w != 0) t = f64x2.mul(t, load2<T>(w + o));
    store2<T>(y + o, f64x2.add(t, b == 0 ? c : load2<T>(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i * step;
    let t = (load1<T>(x + o) - mean - lo) * scale;
    if (w != 0) t *= load1<T>(w + o);
    store1<T>(y + o, t + (b == 0 ? shift : load1<T>(b + o)));
  }
}

/** sum dy (returned) and sum dy*xhat (in `second`) over a run, xhat = ((x - mean) - lo)*rstd */
function backwardSumsRun<T>(x: usize, dy: usize, n: i32, mean: f64, lo: f64, rstd: f64): f64 {
  const m = f64x2.splat(mean);
  const l = f64x2.splat(lo);
  const r = f64x2.splat(rstd);
  let s1 = f64x2.splat(0);
  let s2 = f64x2.splat(0);
  let i = 0;
  const step = <usize>sizeof<T>();
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i * step;
    const d = load2<T>(dy + o);
    const xhat = f64x2.mul(f64x2.sub(f64x2.sub(load2<T>(x + o), m), l), r);
    s1 = f64x2.add(s1, d);
    s2 = f64x2.add(s2, f64x2.mul(d, xhat));
  }
  let sumDy = hsum(s1);
  let sumDyXhat = hsum(s2);
  for (; i < n; i++) {
    const o = <usize>i * step;
    const d = load1<T>(dy + o);
    sumDy += d;
    sumDyXhat += d * ((load1<T>(x + o) - mean - lo) * rstd);
  }
  second = sumDyXhat;
  return sumDy;
}

/**
 * dx = k*(w*dy) - c1 - xhat*c2, xhat = ((x - mean) - lo)*rstd, w per value (0: absent). In the reference's terms
 * (reference/normalize.ts): k*(w*dy) = dxTerm1, c1 = -dxTerm3 = rstd*sum(dxhat)/M, xhat*c2 = -dxTerm2 = xhat*rstd*sum(dxhat*xhat)/M.
 */
function dxRun<T>(dx: usize, dy: usize, x: usize, w: usize, n: i32, mean: f64, lo: f64, rstd: f64, k: f64, c1: f64, c2: f64): void {
  const m = f64x2.splat(mean);
  const l = f64x2.splat(lo);
  const r = f64x2.splat(rstd);
  const vk = f64x2.splat(k);
  const vc1 = f64x2.splat(c1);
  const vc2 = f64x2.splat(c2);
  let i = 0;
  const step = <usize>sizeof<T>();
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i * step;
    const xhat = f64x2.mul(f64x2.sub(f64x2.sub(load2<T>(x + o), m), l), r);
    const g = w == 0 ? load2<T>(dy + o) : f64x2.mul(load2<T>(w + o), load2<T>(dy + o));
    store2<T>(dx + o, f64x2.sub(f64x2.sub(f64x2.mul(vk, g), vc1), f64x2.mul(xhat, vc2)));
  }
  for (; i < n; i++) {
    const o = <usize>i * step;
    const xhat = (load1<T>(x + o) - mean - lo) * rstd;
    const g = w == 0 ? load1<T>(dy + o) : load1<T>(w + o) * load1<T>(dy + o);
    store1<T>(dx + o, k * g - c1 - xhat * c2);
  }
}

// ---- reductions over runs whose every value has its own affine entry (R = 1: LayerNorm) ----

/**
 * dweight[i] += dy*xhat, dbias[i] += dy (float64 partials); returns sum w*dy, `second` = sum w*dy*xhat.
 */
function backwardSumsVecRun<T>(x: usize, dy: usize, w: usize, dweight: usize, dbias: usize, n: i32, mean: f64, lo: f64, rstd: f64): f64 {
  const m = f64x2.splat(mean);
  const l = f64x2.splat(lo);
  const r = f64x2.splat(rstd);
  const one = f64x2.splat(1);
  const step = <usize>sizeof<T>();
  let s1 = f64x2.splat(0);
  let s2 = f64x2.splat(0);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i * step;
    const o8 = <usize>i << 3;
    const d = load2<T>(dy + o);
    const xhat = f64x2.mul(f64x2.sub(f64x2.sub(load2<T>(x + o), m), l), r);
    const dxh = f64x2.mul(d, xhat);
    v128.store(dbias + o8, f64x2.add(v128.load(dbias + o8), d));
    v128.store(dweight + o8, f64x2.add(v128.load(dweight + o8), dxh));
    const scale = w == 0 ? one : load2<T>(w + o);
    s1 = f64x2.add(s1, f64x2.mul(scale, d));
    s2 = f64x2.add(s2, f64x2.mul(scale, dxh));
  }
  let sum1 = hsum(s1);
  let sum2 = hsum(s2);
  for (; i < n; i++) {
    const o = <usize>i * step;
    const o8 = <usize>i << 3;
    const d = load1<T>(dy + o);
    const xhat = (load1<T>(x + o) - mean - lo) * rstd;
    store<f64>(dbias + o8, load<f64>(dbias + o8) + d);
    store<f64>(dweight + o8, load<f64>(dweight + o8) + d * xhat);
    const scale = w == 0 ? 1 : load1<T>(w + o);
    sum1 += scale * d;
    sum2 += scale * d * xhat;
  }
  second = sum2;
  return sum1;
}

// ---- float32 runs: f32x4 lanes over blocks of 16 values, each block's sums flushed into float64 ----
// The mean is subtracted as hi/lo float32 parts (x - hi is exact near the mean), so no cancellation.

@inline function flush(acc: v128, v: v128): v128 {
  // adds the four f32 lanes of v into the two f64 lanes of acc
  return f64x2.add(acc, f64x2.add(f64x2.promote_low_f32x4(v), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1))));
}

/** sum x */
@inline function sumRunF32(x: usize, n: i32): f64 {
  let acc = f64x2.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = x + (<usize>i << 2);
    const a = f32x4.add(v128.load(p), v128.load(p, 16));
    const b = f32x4.add(v128.load(p, 32), v128.load(p, 48));
    acc = flush(acc, f32x4.add(a, b));
  }
  let sum = hsum(acc);
  for (; i < n; i++) sum += <f64>load<f32>(x + (<usize>i << 2));
  return sum;
}

/** sum (x - shift) (returned) and sum (x - shift)^2 (in `second`), shift a float32 close to the mean */
@inline function shiftedMomentsRunF32(x: usize, n: i32, shift: f32): f64 {
  const m = f32x4.splat(shift);
  let acc1 = f64x2.splat(0);
  let acc2 = f64x2.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = x + (<usize>i << 2);
    const d0 = f32x4.sub(v128.load(p), m);
    const d1 = f32x4.sub(v128.load(p, 16), m);
    const d2 = f32x4.sub(v128.load(p, 32), m);
    const d3 = f32x4.sub(v128.load(p, 48), m);
    acc1 = flush(acc1, f32x4.add(f32x4.add(d0, d1), f32x4.add(d2, d3)));
    acc2 = flush(acc2, f32x4.add(f32x4.add(f32x4.mul(d0, d0), f32x4.mul(d1, d1)), f32x4.add(f32x4.mul(d2, d2), f32x4.mul(d3, d3))));
  }
  let s1 = hsum(acc1);
  let s2 = hsum(acc2);
  for (; i < n; i++) {
    const d = <f64>(load<f32>(x + (<usize>i << 2)) - shift);
    s1 += d;
    s2 += d * d;
  }
  second = s2;
  return s1;
}

/** sum dy (returned) and sum dy*xhat (in `second`), xhat = ((x - hi) - lo)*rstd */
@inline function backwardSumsRunF32(x: usize, dy: usize, n: i32, hi: f32, lo: f32, rstd: f32): f64 {
  const vh = f32x4.splat(hi);
  const vl = f32x4.splat(lo);
  const vr = f32x4.splat(rstd);
  let acc1 = f64x2.splat(0);
  let acc2 = f64x2.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const d0 = v128.load(dy + o);
    const d1 = v128.load(dy + o, 16);
    const d2 = v128.load(dy + o, 32);
    const d3 = v128.load(dy + o, 48);
    const h0 = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o), vh), vl), vr);
    const h1 = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o, 16), vh), vl), vr);
    const h2 = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o, 32), vh), vl), vr);
    const h3 = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o, 48), vh), vl), vr);
    acc1 = flush(acc1, f32x4.add(f32x4.add(d0, d1), f32x4.add(d2, d3)));
    acc2 = flush(acc2, f32x4.add(f32x4.add(f32x4.mul(d0, h0), f32x4.mul(d1, h1)), f32x4.add(f32x4.mul(d2, h2), f32x4.mul(d3, h3))));
  }
  let s1 = hsum(acc1);
  let s2 = hsum(acc2);
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const d = <f64>load<f32>(dy + o);
    s1 += d;
    s2 += d * <f64>((load<f32>(x + o) - hi - lo) * rstd);
  }
  second = s2;
  return s1;
}

/** y = ((x - hi) - lo)*scale*w + (b or shift), float32 lanes; w, b per value (0: absent) */
@inline function affineRunF32(y: usize, x: usize, w: usize, b: usize, n: i32, hi: f32, lo: f32, scale: f32, shift: f32): void {
  const vh = f32x4.splat(hi);
  const vl = f32x4.splat(lo);
  const va = f32x4.splat(scale);
  const vb = f32x4.splat(shift);
  let i = 0;
  if (w == 0 && b == 0) {
    // no per-value weight or bias (BatchNorm, GroupNorm): four vectors a step
    for (; i + 16 <= n; i += 16) {
      const o = <usize>i << 2;
      v128.store(y + o, f32x4.add(f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o), vh), vl), va), vb));
      v128.store(y + o, f32x4.add(f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o, 16), vh), vl), va), vb), 16);
      v128.store(y + o, f32x4.add(f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o, 32), vh), vl), va), vb), 32);
      v128.store(y + o, f32x4.add(f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o, 48), vh), vl), va), vb), 48);
    }
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    let t = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o), vh), vl), va);
    if (w != 0) t = f32x4.mul(t, v128.load(w + o));
    v128.store(y + o, f32x4.add(t, b == 0 ? vb : v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    let t = (load<f32>(x + o) - hi - lo) * scale;
    if (w != 0) t *= load<f32>(w + o);
    store<f32>(y + o, t + (b == 0 ? shift : load<f32>(b + o)));
  }
}

/** dx = k*(w*dy) - c1 - xhat*c2 (dxTerm1 + dxTerm3 + dxTerm2, as dxRun), xhat = ((x - hi) - lo)*rstd, float32 lanes; w per value (0: absent) */
@inline function dxRunF32(dx: usize, dy: usize, x: usize, w: usize, n: i32, hi: f32, lo: f32, rstd: f32, k: f32, c1: f32, c2: f32): void {
  const vh = f32x4.splat(hi);
  const vl = f32x4.splat(lo);
  const vr = f32x4.splat(rstd);
  const vk = f32x4.splat(k);
  const vc1 = f32x4.splat(c1);
  const vc2 = f32x4.splat(c2);
  let i = 0;
  if (w == 0) {
    // no per-value weight (BatchNorm, GroupNorm): four vectors a step
    for (; i + 16 <= n; i += 16) {
      const o = <usize>i << 2;
      const h0 = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o), vh), vl), vr);
      const h1 = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o, 16), vh), vl), vr);
      const h2 = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o, 32), vh), vl), vr);
      const h3 = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o, 48), vh), vl), vr);
      v128.store(dx + o, f32x4.sub(f32x4.sub(f32x4.mul(vk, v128.load(dy + o)), vc1), f32x4.mul(h0, vc2)));
      v128.store(dx + o, f32x4.sub(f32x4.sub(f32x4.mul(vk, v128.load(dy + o, 16)), vc1), f32x4.mul(h1, vc2)), 16);
      v128.store(dx + o, f32x4.sub(f32x4.sub(f32x4.mul(vk, v128.load(dy + o, 32)), vc1), f32x4.mul(h2, vc2)), 32);
      v128.store(dx + o, f32x4.sub(f32x4.sub(f32x4.mul(vk, v128.load(dy + o, 48)), vc1), f32x4.mul(h3, vc2)), 48);
    }
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const xhat = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o), vh), vl), vr);
    const g = w == 0 ? v128.load(dy + o) : f32x4.mul(v128.load(w + o), v128.load(dy + o));
    v128.store(dx + o, f32x4.sub(f32x4.sub(f32x4.mul(vk, g), vc1), f32x4.mul(xhat, vc2)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const xhat = (load<f32>(x + o) - hi - lo) * rstd;
    const g = w == 0 ? load<f32>(dy + o) : load<f32>(w + o) * load<f32>(dy + o);
    store<f32>(dx + o, k * g - c1 - xhat * c2);
  }
}

// ---- group mode: statistics groups q in [q0, q1) ----

/** Where group q's first run starts (in values); run s starts s*G*B values later. */
@inline function runStart(q: i32, S: i32, G: i32, B: i32): usize {
  const a = q / G;
  const g = q % G;
  return ((<usize>a * <usize>S * <usize>G) + <usize>g) * <usize>B;
}

// where |mean|*rstd exceeds this, the cached mean's rounding would move xhat by more than its own
// rounding: the backward restores the mean's lost digits, lo = mean(x - mean), with one more pass
const MEAN_LO_MIN: f64 = 1;

function groupForward<T>(y: usize, x: usize, S: i32, G: i32, B: i32, K: i32, weight: usize, bias: usize, eps: f64, mean: usize, variance: usize, rstd: usize, batchStats: bool, q0: i32, q1: i32, fast: bool): void {
  const blocks = sizeof<T>() == 4 && fast && batchStats ? groupsPerBlock(S, G, B, K, q1) : 1;
  if (blocks > 1) {
    for (let q = q0; q < q1; q += blocks) groupForwardBlockF32(y, x, S, G, B, weight, bias, eps, mean, variance, rstd, q, min(q + blocks, q1));
    return;
  }
  for (let q = q0; q < q1; q++) groupForwardOne<T>(y, x, S, G, B, K, weight, bias, eps, mean, variance, rstd, batchStats, q, fast);
}

/** Group q's statistics (batchStats; else read) and y: its S runs walked once per pass. */
function groupForwardOne<T>(y: usize, x: usize, S: i32, G: i32, B: i32, K: i32, weight: usize, bias: usize, eps: f64, mean: usize, variance: usize, rstd: usize, batchStats: bool, q: i32, fast: bool): void {
  const step = <usize>sizeof<T>();
  const M = <f64>S * <f64>B;
  const stride = <usize>G * <usize>B;
  const first = runStart(q, S, G, B);
  // fast: float32 lanes (large groups of float32 data); otherwise every value is widened to float64
  let lanes = sizeof<T>() == 4 && fast;
  let mu: f64 = 0;
  let lo: f64 = 0;
  let r: f64;
  if (batchStats) {
    let v: f64 = 0;
    if (lanes) {
      // float32: moments around a shift m, corrected: var = E[(x-m)^2] - (E[x-m])^2. m = the first run's
      // float32 mean; where it proves far from the group's mean ((E[x-m])^2 > var: the float32 sums
      // lost digits) a second pass takes m = that mean (as row mode)
      let shift = <f32>(sumRunF32(x + first * step, B) / <f64>B);
      for (let pass = 0; pass < 2; pass++) {
        let s1: f64 = 0;
        let s2: f64 = 0;
        for (let s = 0; s < S; s++) {
          s1 += shiftedMomentsRunF32(x + (first + <usize>s * stride) * step, B, shift);
          s2 += second;
        }
        const d = s1 / M;
        mu = <f64>shift + d;
        v = Math.max(0, s2 / M - d * d);
        if (!(d * d > v) || !isFinite(mu)) break;
        shift = <f32>mu;
      }
      if (!varianceHolds(mu, v)) lanes = false;
    }
    if (!lanes) {
      // mu = hi + lo: hi = mean(x) rounded, lo = mean(x - hi) (x - hi exact near the mean);
      // var = mean((x - hi)^2) - lo^2 (corrected two-pass)
      let sum: f64 = 0;
      for (let s = 0; s < S; s++) sum += sumRun<T>(x + (first + <usize>s * stride) * step, B);
      mu = sum / M;
      let s1: f64 = 0;
      let s2: f64 = 0;
      for (let s = 0; s < S; s++) {
        s2 += centredMomentsRun<T>(x + (first + <usize>s * stride) * step, B, mu);
        s1 += second;
      }
      lo = s1 / M;
      v = Math.max(0, s2 / M - lo * lo);
    }
    r = 1 / Math.sqrt(v + eps);
    store<f64>(mean + (<usize>q << 3), mu + lo);
    store<f64>(variance + (<usize>q << 3), v);
    store<f64>(rstd + (<usize>q << 3), r);
  } else {
    mu = load<f64>(mean + (<usize>q << 3));
    r = load<f64>(rstd + (<usize>q << 3));
  }
  if (!rstdHolds(r)) lanes = false;
  const g = q % G;
  // last run first: the moments pass read it last, so it is the likeliest still in cache
  for (let s = S - 1; s >= 0; s--) normalizeRun<T>(y, x, first + <usize>s * stride, g, B, K, B / K, weight, bias, mu, lo, r, lanes);
}

// BatchNorm's groups in blocks (K = 1, S > 1, one block of A): at each s the block's runs are adjacent, so a
// pass walks blocks*B contiguous values per s where group by group it walks S runs strided G*B apart (shape A:
// 12.5 KB runs 800 KB apart, each restarting the prefetchers). A block of a thread holds about BLOCK_BYTES of
// x, so a block's x (and dy) stay in L3 between its passes.
const BLOCK_BYTES: f64 = 4194304;

/** Groups per block for groups [.., q1) (1: group by group). */
@inline function groupsPerBlock(S: i32, G: i32, B: i32, K: i32, q1: i32): i32 {
  if (K != 1 || S < 2 || q1 > G) return 1;
  return <i32>Math.max(1, Math.floor(BLOCK_BYTES / (<f64>S * <f64>B * 4)));
}

/** Byte offset of group q's run s in a block (A = 1: run s of group q is values (s*G + q)*B on). */
@inline function blockRun(q: i32, s: i32, G: i32, B: i32): usize {
  return ((<usize>s * <usize>G + <usize>q) * <usize>B) << 2;
}

@inline function at(p: usize, q: i32): usize {
  return p + (<usize>q << 3);
}

/**
 * groupForwardOne for float32 lanes with batch statistics over groups [qa, qb) of one block, pass by pass
 * across the block: the same sums in the same order per group. A group whose float32 moments do not hold
 * (the shift far from the mean, or outside float32's range) is marked (variance -1) and redone alone.
 */
function groupForwardBlockF32(y: usize, x: usize, S: i32, G: i32, B: i32, weight: usize, bias: usize, eps: f64, mean: usize, variance: usize, rstd: usize, qa: i32, qb: i32): void {
  const M = <f64>S * <f64>B;
  // each group's shift (its first run's float32 mean) waits in rstd; the sums in mean and variance
  for (let q = qa; q < qb; q++) {
    store<f64>(at(rstd, q), <f64><f32>(sumRunF32(x + blockRun(q, 0, G, B), B) / <f64>B));
    store<f64>(at(mean, q), 0);
    store<f64>(at(variance, q), 0);
  }
  for (let s = 0; s < S; s++) {
    for (let q = qa; q < qb; q++) {
      const s1 = shiftedMomentsRunF32(x + blockRun(q, s, G, B), B, <f32>load<f64>(at(rstd, q)));
      store<f64>(at(mean, q), load<f64>(at(mean, q)) + s1);
      store<f64>(at(variance, q), load<f64>(at(variance, q)) + second);
    }
  }
  for (let q = qa; q < qb; q++) {
    const d = load<f64>(at(mean, q)) / M;
    const mu = load<f64>(at(rstd, q)) + d;
    const v = Math.max(0, load<f64>(at(variance, q)) / M - d * d);
    const r = 1 / Math.sqrt(v + eps);
    const holds = !(d * d > v) && varianceHolds(mu, v) && rstdHolds(r);
    store<f64>(at(mean, q), mu);
    store<f64>(at(variance, q), holds ? v : -1);
    store<f64>(at(rstd, q), r);
  }
  for (let s = S - 1; s >= 0; s--) {
    for (let q = qa; q < qb; q++) {
      if (load<f64>(at(variance, q)) < 0) continue;
      normalizeRun<f32>(y, x, blockRun(q, s, G, B) >> 2, q, B, 1, B, weight, bias, load<f64>(at(mean, q)), 0, load<f64>(at(rstd, q)), true);
    }
  }
  for (let q = qa; q < qb; q++) {
    if (load<f64>(at(variance, q)) < 0) groupForwardOne<f32>(y, x, S, G, B, 1, weight, bias, eps, mean, variance, rstd, true, q, true);
  }
}

/** y over one run of B values (group g, R = B/K values per affine entry) from its statistics: mean mu + lo, rstd r; `lanes`: float32 lanes. */
@inline function normalizeRun<T>(y: usize, x: usize, base: usize, g: i32, B: i32, K: i32, R: i32, weight: usize, bias: usize, mu: f64, lo: f64, r: f64, lanes: bool): void {
  const step = <usize>sizeof<T>();
  if (R == 1 && K > 1) {
    // one affine entry per value (LayerNorm): vector loads of weight and bias
    const j = <usize>(g * K) * step;
    const o = base * step;
    const pw: usize = weight == 0 ? 0 : weight + j;
    const pb: usize = bias == 0 ? 0 : bias + j;
    if (lanes) affineRunF32(y + o, x + o, pw, pb, B, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>r, 0);
    else affineRun<T>(y + o, x + o, pw, pb, B, mu, lo, r, 0);
    return;
  }
  for (let k = 0; k < K; k++) {
    const j = <usize>(g * K + k);
    const scale = weight == 0 ? r : r * load1<T>(weight + j * step);
    const shift = bias == 0 ? 0 : load1<T>(bias + j * step);
    const o = (base + <usize>(k * R)) * step;
    if (lanes) affineRunF32(y + o, x + o, 0, 0, R, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>scale, <f32>shift);
    else affineRun<T>(y + o, x + o, 0, 0, R, mu, lo, scale, shift);
  }
}

/**
 * y from given statistics (eval mode) over rows [r0, r1) of G*B values (row = a*S + s): memory order,
 * one sequential stream per thread, where group order would walk S strided runs per group.
 */
function groupNormalizeRows<T>(y: usize, x: usize, S: i32, G: i32, B: i32, K: i32, weight: usize, bias: usize, mean: usize, rstd: usize, r0: i32, r1: i32, fast: bool): void {
  const R = B / K;
  for (let row = r0; row < r1; row++) {
    const a = row / S;
    for (let g = 0; g < G; g++) {
      const q = a * G + g;
      const mu = load<f64>(mean + (<usize>q << 3));
      const r = load<f64>(rstd + (<usize>q << 3));
      normalizeRun<T>(y, x, (<usize>row * <usize>G + <usize>g) * <usize>B, g, B, K, R, weight, bias, mu, 0, r, sizeof<T>() == 4 && fast && rstdHolds(r));
    }
  }
}

/** Accumulates dweight/dbias partials (f64, G*K) for its groups and writes dx. */
function groupBackward<T>(dx: usize, dy: usize, x: usize, S: i32, G: i32, B: i32, K: i32, weight: usize, mean: usize, rstd: usize, batchStats: bool, dweight: usize, dbias: usize, q0: i32, q1: i32, fast: bool): void {
  const blocks = sizeof<T>() == 4 && fast ? groupsPerBlock(S, G, B, K, q1) : 1;
  if (blocks > 1) {
    for (let q = q0; q < q1; q += blocks) groupBackwardBlockF32(dx, dy, x, S, G, B, weight, mean, rstd, batchStats, dweight, dbias, q, min(q + blocks, q1));
    return;
  }
  for (let q = q0; q < q1; q++) groupBackwardOne<T>(dx, dy, x, S, G, B, K, weight, mean, rstd, batchStats, dweight, dbias, q, fast);
}

/** groupBackward for group q alone: its S runs walked once per pass. */
function groupBackwardOne<T>(dx: usize, dy: usize, x: usize, S: i32, G: i32, B: i32, K: i32, weight: usize, mean: usize, rstd: usize, batchStats: bool, dweight: usize, dbias: usize, q: i32, fast: bool): void {
  const step = <usize>sizeof<T>();
  const M = <f64>S * <f64>B;
  const R = B / K;
  const stride = <usize>G * <usize>B;
  const first = runStart(q, S, G, B);
  const mu = load<f64>(mean + (<usize>q << 3));
  const r = load<f64>(rstd + (<usize>q << 3));
  const lanes = sizeof<T>() == 4 && fast && rstdHolds(r);
  // batch statistics: the cached mean is the batch mean rounded; lo = mean(x - mean) restores its lost digits
  let lo: f64 = 0;
  if (!lanes && batchStats && Math.abs(mu) * r > MEAN_LO_MIN) {
    for (let s = 0; s < S; s++) lo += centredSumRun<T>(x + (first + <usize>s * stride) * step, B, mu);
    lo /= M;
  }
  const g = q % G;
  if (R == 1 && K > 1) {
    // one affine entry per value (LayerNorm)
    const j = <usize>(g * K);
    const pw: usize = weight == 0 ? 0 : weight + j * step;
    let sumDxhatV: f64 = 0;
    let sumDxhatXhatV: f64 = 0;
    for (let s = 0; s < S; s++) {
      const o = (first + <usize>s * stride) * step;
      sumDxhatV += backwardSumsVecRun<T>(x + o, dy + o, pw, dweight + (j << 3), dbias + (j << 3), B, mu, lo, r);
      sumDxhatXhatV += second;
    }
    const c1v = batchStats ? sumDxhatV / M : 0;
    const c2v = batchStats ? sumDxhatXhatV / M : 0;
    for (let s = 0; s < S; s++) {
      const o = (first + <usize>s * stride) * step;
      // dx = rstd*(w*dy - c1v - xhat*c2v): rstd*c1v = -dxTerm3, rstd*xhat*c2v = -dxTerm2 (the reference's terms)
      if (lanes) dxRunF32(dx + o, dy + o, x + o, pw, B, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>r, <f32>r, <f32>(r * c1v), <f32>(r * c2v));
      else dxRun<T>(dx + o, dy + o, x + o, pw, B, mu, lo, r, r, r * c1v, r * c2v);
    }
    return;
  }
  // reductions: sum dxhat and sum dxhat*xhat per group; dgamma, dbeta per affine entry
  let sumDxhat: f64 = 0;
  let sumDxhatXhat: f64 = 0;
  for (let s = 0; s < S; s++) {
    const base = first + <usize>s * stride;
    for (let k = 0; k < K; k++) {
      const j = <usize>(g * K + k);
      const o = (base + <usize>(k * R)) * step;
      const sumDy = lanes ? backwardSumsRunF32(x + o, dy + o, R, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>r) : backwardSumsRun<T>(x + o, dy + o, R, mu, lo, r);
      const sumDyXhat = second;
      const w = weight == 0 ? 1 : load1<T>(weight + j * step);
      store<f64>(dbias + (j << 3), load<f64>(dbias + (j << 3)) + sumDy);
      store<f64>(dweight + (j << 3), load<f64>(dweight + (j << 3)) + sumDyXhat);
      sumDxhat += w * sumDy;
      sumDxhatXhat += w * sumDyXhat;
    }
  }
  // dx = rstd*(w*dy - sum(dxhat)/M - xhat*sum(dxhat*xhat)/M) = dxTerm1 + dxTerm3 + dxTerm2 of the reference:
  // c1 = -dxTerm3 = rstd*sum(dxhat)/M and xhat*c2 = -dxTerm2 (terms 3 and 2 with their signs flipped; 0 for constant statistics)
  const c1 = batchStats ? (r * sumDxhat) / M : 0;
  const c2 = batchStats ? (r * sumDxhatXhat) / M : 0;
  // last run first: the sums pass read it last, and dx's writes evict the runs read first (x, dy and dx
  // of a channel outgrow L2 on shape A)
  for (let s = S - 1; s >= 0; s--) {
    const base = first + <usize>s * stride;
    for (let k = 0; k < K; k++) {
      const j = <usize>(g * K + k);
      const w = weight == 0 ? 1 : load1<T>(weight + j * step);
      const o = (base + <usize>(k * R)) * step;
      if (lanes) dxRunF32(dx + o, dy + o, x + o, 0, R, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>r, <f32>(r * w), <f32>c1, <f32>c2);
      else dxRun<T>(dx + o, dy + o, x + o, 0, R, mu, lo, r, r * w, c1, c2);
    }
  }
}

/**
 * groupBackwardOne for float32 lanes over groups [qa, qb) of one block (K = 1, so group q's affine entry is q and
 * its dbias and dweight partials hold its own sums), pass by pass across the block. A group whose rstd is
 * outside float32's range runs widened, alone.
 */
function groupBackwardBlockF32(dx: usize, dy: usize, x: usize, S: i32, G: i32, B: i32, weight: usize, mean: usize, rstd: usize, batchStats: bool, dweight: usize, dbias: usize, qa: i32, qb: i32): void {
  const M = <f64>S * <f64>B;
  for (let s = 0; s < S; s++) {
    for (let q = qa; q < qb; q++) {
      const r = load<f64>(at(rstd, q));
      if (!rstdHolds(r)) continue;
      const mu = load<f64>(at(mean, q));
      const o = blockRun(q, s, G, B);
      store<f64>(at(dbias, q), load<f64>(at(dbias, q)) + backwardSumsRunF32(x + o, dy + o, B, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>r));
      store<f64>(at(dweight, q), load<f64>(at(dweight, q)) + second);
    }
  }
  // dx as groupBackwardOne: c1 = rstd*w*sum(dy)/M, c2 = rstd*w*sum(dy*xhat)/M; last runs first
  for (let s = S - 1; s >= 0; s--) {
    for (let q = qa; q < qb; q++) {
      const r = load<f64>(at(rstd, q));
      if (!rstdHolds(r)) continue;
      const mu = load<f64>(at(mean, q));
      const w: f64 = weight == 0 ? 1 : <f64>load<f32>(weight + (<usize>q << 2));
      const c1 = batchStats ? (r * (w * load<f64>(at(dbias, q)))) / M : 0;
      const c2 = batchStats ? (r * (w * load<f64>(at(dweight, q)))) / M : 0;
      const o = blockRun(q, s, G, B);
      dxRunF32(dx + o, dy + o, x + o, 0, B, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>r, <f32>(r * w), <f32>c1, <f32>c2);
    }
  }
  for (let q = qa; q < qb; q++) {
    if (!rstdHolds(load<f64>(at(rstd, q)))) groupBackwardOne<f32>(dx, dy, x, S, G, B, 1, weight, mean, rstd, batchStats, dweight, dbias, q, true);
  }
}

/** Copies n bytes (a multiple of 64) with 128-bit loads and stores: the benchmark's bandwidth probe. */
export function copy(dst: usize, src: usize, n: usize): void {
  for (let i: usize = 0; i < n; i += 64) {
    v128.store(dst + i, v128.load(src + i));
    v128.store(dst + i, v128.load(src + i, 16), 16);
    v128.store(dst + i, v128.load(src + i, 32), 32);
    v128.store(dst + i, v128.load(src + i, 48), 48);
  }
}

// ---- exports: one entry per dtype ----
export function group_forward_f32(y: usize, x: usize, S: i32, G: i32, B: i32, K: i32, w: usize, b: usize, eps: f64, mean: usize, v: usize, rstd: usize, batch: bool, q0: i32, q1: i32, fast: bool): void {
  groupForward<f32>(y, x, S, G, B, K, w, b, eps, mean, v, rstd, batch, q0, q1, fast);
}
export function group_forward_f64(y: usize, x: usize, S: i32, G: i32, B: i32, K: i32, w: usize, b: usize, eps: f64, mean: usize, v: usize, rstd: usize, batch: bool, q0: i32, q1: i32, fast: bool): void {
  groupForward<f64>(y, x, S, G, B, K, w, b, eps, mean, v, rstd, batch, q0, q1, fast);
}
export function group_normalize_rows_f32(y: usize, x: usize, S: i32, G: i32, B: i32, K: i32, w: usize, b: usize, mean: usize, rstd: usize, r0: i32, r1: i32, fast: bool): void {
  groupNormalizeRows<f32>(y, x, S, G, B, K, w, b, mean, rstd, r0, r1, fast);
}
export function group_normalize_rows_f64(y: usize, x: usize, S: i32, G: i32, B: i32, K: i32, w: usize, b: usize, mean: usize, rstd: usize, r0: i32, r1: i32, fast: bool): void {
  groupNormalizeRows<f64>(y, x, S, G, B, K, w, b, mean, rstd, r0, r1, fast);
}
export function group_backward_f32(dx: usize, dy: usize, x: usize, S: i32, G: i32, B: i32, K: i32, w: usize, mean: usize, rstd: usize, batch: bool, dw: usize, db: usize, q0: i32, q1: i32, fast: bool): void {
  groupBackward<f32>(dx, dy, x, S, G, B, K, w, mean, rstd, batch, dw, db, q0, q1, fast);
}
export function group_backward_f64(dx: usize, dy: usize, x: usize, S: i32, G: i32, B: i32, K: i32, w: usize, mean: usize, rstd: usize, batch: bool, dw: usize, db: usize, q0: i32, q1: i32, fast: bool): void {
  groupBackward<f64>(dx, dy, x, S, G, B, K, w, mean, rstd, batch, dw, db, q0, q1, fast);
}
