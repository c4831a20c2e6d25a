// AssemblyScript kernels for the wasm backend (compiled by scripts/build-wasm.mjs with SIMD, and with
// threads over shared memory). One generic source for float32 and float64: elements are widened to
// f64x2 lanes, so every sum and every difference x - mean is taken in float64. Large float32 groups
// take the `fast` path instead: f32x4 lanes over short blocks flushed into float64 sums, the mean
// subtracted as hi/lo float32 parts.
//
// View letters as in core/layout.ts: A blocks, S span, G groups, B run, K affine entries per group,
// R = B/K, M = S*B. Statistics, per-column parameters and partial sums are f64 arrays.
// Group mode walks one statistics group at a time (runs of B contiguous values, B large);
// row mode walks rows of cols = G*B contiguous values (channels-last, B small) with SIMD across columns.

// second result of a two-value reduction (per instance, so per thread)
let second: f64 = 0;


@inline function load2<T>(ptr: usize): v128 {
  if (sizeof<T>() == 4) return f64x2.promote_low_f32x4(v128.load64_zero(ptr));
  return v128.load(ptr);
}

@inline function store2<T>(ptr: usize, v: v128): void {
  if (sizeof<T>() == 4) v128.store64_lane(ptr, f32x4.demote_f64x2_zero(v), 0);
  else v128.store(ptr, v);
}

@inline function load1<T>(ptr: usize): f64 {
  return sizeof<T>() == 4 ? <f64>load<f32>(ptr) : load<f64>(ptr);
}

@inline function store1<T>(ptr: usize, v: f64): void {
  if (sizeof<T>() == 4) store<f32>(ptr, <f32>v);
  else store<f64>(ptr, v);
}

@inline function hsum(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

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
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    const d0 = v128.load(dy + o);
    const d1 = v128.load(dy + o, 16);
    const h0 = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o), vh), vl), vr);
    const h1 = f32x4.mul(f32x4.sub(f32x4.sub(v128.load(x + o, 16), vh), vl), vr);
    acc1 = flush(acc1, f32x4.add(d0, d1));
    acc2 = flush(acc2, f32x4.add(f32x4.mul(d0, h0), f32x4.mul(d1, h1)));
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

@inline function runOffset(q: i32, s: i32, S: i32, G: i32, B: i32): usize {
  const a = q / G;
  const g = q % G;
  return ((<usize>a * <usize>S + <usize>s) * <usize>G + <usize>g) * <usize>B;
}

// float32 lanes hold squares and rstd only inside float32's normal range: a group whose variance falls
// below LANES_VAR_MIN, whose float32 sums overflow (|x - mean| beyond ~1e19), or whose rstd falls below
// LANES_RSTD_MIN (|x| near 1e38) is computed widened to float64 instead
const LANES_VAR_MIN: f64 = 1e-24;
const LANES_RSTD_MIN: f64 = 1e-30;
// where |mean|*rstd exceeds this, the cached mean's rounding would move xhat by more than its own
// rounding: the backward restores the mean's lost digits, lo = mean(x - mean), with one more pass
const MEAN_LO_MIN: f64 = 1;

function groupForward<T>(y: usize, x: usize, S: i32, G: i32, B: i32, K: i32, weight: usize, bias: usize, eps: f64, mean: usize, variance: usize, rstd: usize, batchStats: bool, q0: i32, q1: i32, fast: bool): void {
  const step = <usize>sizeof<T>();
  const M = <f64>S * <f64>B;
  const R = B / K;
  for (let q = q0; q < q1; q++) {
    // fast: float32 lanes (large groups of float32 data); otherwise every value is widened to float64
    let lanes = sizeof<T>() == 4 && fast;
    let mu: f64 = 0;
    let lo: f64 = 0;
    let r: f64;
    if (batchStats) {
      let v: f64 = 0;
      if (lanes) {
        // float32: moments around the float32 mean, corrected: var = E[(x-m)^2] - (E[x-m])^2 with E[x-m] ~ 0
        let sum: f64 = 0;
        for (let s = 0; s < S; s++) sum += sumRunF32(x + runOffset(q, s, S, G, B) * step, B);
        const shift = <f32>(sum / M);
        let s1: f64 = 0;
        let s2: f64 = 0;
        for (let s = 0; s < S; s++) {
          s1 += shiftedMomentsRunF32(x + runOffset(q, s, S, G, B) * step, B, shift);
          s2 += second;
        }
        mu = <f64>shift + s1 / M;
        v = Math.max(0, s2 / M - (s1 / M) * (s1 / M));
        if (!isFinite(mu) || !isFinite(v) || !(v >= LANES_VAR_MIN)) lanes = false;
      }
      if (!lanes) {
        // mu = hi + lo: hi = mean(x) rounded, lo = mean(x - hi) (x - hi exact near the mean);
        // var = mean((x - hi)^2) - lo^2 (corrected two-pass)
        let sum: f64 = 0;
        for (let s = 0; s < S; s++) sum += sumRun<T>(x + runOffset(q, s, S, G, B) * step, B);
        mu = sum / M;
        let s1: f64 = 0;
        let s2: f64 = 0;
        for (let s = 0; s < S; s++) {
          s2 += centredMomentsRun<T>(x + runOffset(q, s, S, G, B) * step, B, mu);
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
    if (!(r >= LANES_RSTD_MIN)) lanes = false;
    const g = q % G;
    if (R == 1 && K > 1) {
      // one affine entry per value (LayerNorm): vector loads of weight and bias
      const j = <usize>(g * K) * step;
      for (let s = 0; s < S; s++) {
        const o = runOffset(q, s, S, G, B) * step;
        const pw: usize = weight == 0 ? 0 : weight + j;
        const pb: usize = bias == 0 ? 0 : bias + j;
        if (lanes) affineRunF32(y + o, x + o, pw, pb, B, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>r, 0);
        else affineRun<T>(y + o, x + o, pw, pb, B, mu, lo, r, 0);
      }
      continue;
    }
    for (let s = 0; s < S; s++) {
      const base = runOffset(q, s, S, G, B);
      for (let k = 0; k < K; k++) {
        const j = <usize>(g * K + k);
        const scale = weight == 0 ? r : r * load1<T>(weight + j * step);
        const shift = bias == 0 ? 0 : load1<T>(bias + j * step);
        const o = (base + <usize>(k * R)) * step;
        if (lanes) affineRunF32(y + o, x + o, 0, 0, R, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>scale, <f32>shift);
        else affineRun<T>(y + o, x + o, 0, 0, R, mu, lo, scale, shift);
      }
    }
  }
}

/** Accumulates dweight/dbias partials (f64, G*K) for its groups and writes dx. */
function groupBackward<T>(dx: usize, dy: usize, x: usize, S: i32, G: i32, B: i32, K: i32, weight: usize, mean: usize, rstd: usize, batchStats: bool, dweight: usize, dbias: usize, q0: i32, q1: i32, fast: bool): void {
  const step = <usize>sizeof<T>();
  const M = <f64>S * <f64>B;
  const R = B / K;
  for (let q = q0; q < q1; q++) {
    const mu = load<f64>(mean + (<usize>q << 3));
    const r = load<f64>(rstd + (<usize>q << 3));
    const lanes = sizeof<T>() == 4 && fast && r >= LANES_RSTD_MIN;
    // batch statistics: the cached mean is the batch mean rounded; lo = mean(x - mean) restores its lost digits
    let lo: f64 = 0;
    if (!lanes && batchStats && Math.abs(mu) * r > MEAN_LO_MIN) {
      for (let s = 0; s < S; s++) lo += centredSumRun<T>(x + runOffset(q, s, S, G, B) * step, B, mu);
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
        const o = runOffset(q, s, S, G, B) * step;
        sumDxhatV += backwardSumsVecRun<T>(x + o, dy + o, pw, dweight + (j << 3), dbias + (j << 3), B, mu, lo, r);
        sumDxhatXhatV += second;
      }
      const c1v = batchStats ? sumDxhatV / M : 0;
      const c2v = batchStats ? sumDxhatXhatV / M : 0;
      for (let s = 0; s < S; s++) {
        const o = runOffset(q, s, S, G, B) * step;
        // dx = rstd*(w*dy - c1v - xhat*c2v): rstd*c1v = -dxTerm3, rstd*xhat*c2v = -dxTerm2 (the reference's terms)
        if (lanes) dxRunF32(dx + o, dy + o, x + o, pw, B, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>r, <f32>r, <f32>(r * c1v), <f32>(r * c2v));
        else dxRun<T>(dx + o, dy + o, x + o, pw, B, mu, lo, r, r, r * c1v, r * c2v);
      }
      continue;
    }
    // reductions: sum dxhat and sum dxhat*xhat per group; dgamma, dbeta per affine entry
    let sumDxhat: f64 = 0;
    let sumDxhatXhat: f64 = 0;
    for (let s = 0; s < S; s++) {
      const base = runOffset(q, s, S, G, B);
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
    for (let s = 0; s < S; s++) {
      const base = runOffset(q, s, S, G, B);
      for (let k = 0; k < K; k++) {
        const j = <usize>(g * K + k);
        const w = weight == 0 ? 1 : load1<T>(weight + j * step);
        const o = (base + <usize>(k * R)) * step;
        if (lanes) dxRunF32(dx + o, dy + o, x + o, 0, R, <f32>mu, <f32>(mu - <f64><f32>mu), <f32>r, <f32>(r * w), <f32>c1, <f32>c2);
        else dxRun<T>(dx + o, dy + o, x + o, 0, R, mu, lo, r, r * w, c1, c2);
      }
    }
  }
}

// ---- row mode: rows r in [r0, r1) of `cols` contiguous values; per-column arrays indexed (a*cols + c) ----

/** acc[a, c] += x  (power = 1) or (x - colMean[a, c])^2 (power = 2) */
function rowsMoment<T>(x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, acc: usize, power: i32): void {
  const step = <usize>sizeof<T>();
  for (let row = r0; row < r1; row++) {
    const a = row / S;
    const xr = x + <usize>row * <usize>cols * step;
    const pr = <usize>a * <usize>cols << 3;
    let c = 0;
    for (; c + 2 <= cols; c += 2) {
      const pa = acc + pr + (<usize>c << 3);
      let v = load2<T>(xr + <usize>c * step);
      if (power == 2) {
        v = f64x2.sub(v, v128.load(colMean + pr + (<usize>c << 3)));
        v = f64x2.mul(v, v);
      }
      v128.store(pa, f64x2.add(v128.load(pa), v));
    }
    for (; c < cols; c++) {
      const pa = acc + pr + (<usize>c << 3);
      let v = load1<T>(xr + <usize>c * step);
      if (power == 2) {
        v -= load<f64>(colMean + pr + (<usize>c << 3));
        v *= v;
      }
      store<f64>(pa, load<f64>(pa) + v);
    }
  }
}

/** y = (x - colMean)*colScale + colShift */
function rowsAffine<T>(y: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, colScale: usize, colShift: usize): void {
  const step = <usize>sizeof<T>();
  for (let row = r0; row < r1; row++) {
    const a = row / S;
    const o = <usize>row * <usize>cols * step;
    const pr = <usize>a * <usize>cols << 3;
    let c = 0;
    for (; c + 2 <= cols; c += 2) {
      const pc = pr + (<usize>c << 3);
      const v = f64x2.sub(load2<T>(x + o + <usize>c * step), v128.load(colMean + pc));
      store2<T>(y + o + <usize>c * step, f64x2.add(f64x2.mul(v, v128.load(colScale + pc)), v128.load(colShift + pc)));
    }
    for (; c < cols; c++) {
      const pc = pr + (<usize>c << 3);
      store1<T>(y + o + <usize>c * step, (load1<T>(x + o + <usize>c * step) - load<f64>(colMean + pc)) * load<f64>(colScale + pc) + load<f64>(colShift + pc));
    }
  }
}

/** accDy[a, c] += dy; accDyXhat[a, c] += dy*xhat */
function rowsBackwardSums<T>(x: usize, dy: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, colRstd: usize, accDy: usize, accDyXhat: usize): void {
  const step = <usize>sizeof<T>();
  for (let row = r0; row < r1; row++) {
    const a = row / S;
    const o = <usize>row * <usize>cols * step;
    const pr = <usize>a * <usize>cols << 3;
    let c = 0;
    for (; c + 2 <= cols; c += 2) {
      const pc = pr + (<usize>c << 3);
      const d = load2<T>(dy + o + <usize>c * step);
      const xhat = f64x2.mul(f64x2.sub(load2<T>(x + o + <usize>c * step), v128.load(colMean + pc)), v128.load(colRstd + pc));
      v128.store(accDy + pc, f64x2.add(v128.load(accDy + pc), d));
      v128.store(accDyXhat + pc, f64x2.add(v128.load(accDyXhat + pc), f64x2.mul(d, xhat)));
    }
    for (; c < cols; c++) {
      const pc = pr + (<usize>c << 3);
      const d = load1<T>(dy + o + <usize>c * step);
      const xhat = (load1<T>(x + o + <usize>c * step) - load<f64>(colMean + pc)) * load<f64>(colRstd + pc);
      store<f64>(accDy + pc, load<f64>(accDy + pc) + d);
      store<f64>(accDyXhat + pc, load<f64>(accDyXhat + pc) + d * xhat);
    }
  }
}

/** dx = colK1*dy - colC1 - xhat*colC2, xhat = (x - colMean)*colRstd */
function rowsDx<T>(dx: usize, dy: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, colRstd: usize, colK1: usize, colC1: usize, colC2: usize): void {
  const step = <usize>sizeof<T>();
  for (let row = r0; row < r1; row++) {
    const a = row / S;
    const o = <usize>row * <usize>cols * step;
    const pr = <usize>a * <usize>cols << 3;
    let c = 0;
    for (; c + 2 <= cols; c += 2) {
      const pc = pr + (<usize>c << 3);
      const xhat = f64x2.mul(f64x2.sub(load2<T>(x + o + <usize>c * step), v128.load(colMean + pc)), v128.load(colRstd + pc));
      const v = f64x2.sub(f64x2.sub(f64x2.mul(v128.load(colK1 + pc), load2<T>(dy + o + <usize>c * step)), v128.load(colC1 + pc)), f64x2.mul(xhat, v128.load(colC2 + pc)));
      store2<T>(dx + o + <usize>c * step, v);
    }
    for (; c < cols; c++) {
      const pc = pr + (<usize>c << 3);
      const xhat = (load1<T>(x + o + <usize>c * step) - load<f64>(colMean + pc)) * load<f64>(colRstd + pc);
      store1<T>(dx + o + <usize>c * step, load<f64>(colK1 + pc) * load1<T>(dy + o + <usize>c * step) - load<f64>(colC1 + pc) - xhat * load<f64>(colC2 + pc));
    }
  }
}

// ---- float32 row mode: blocks of up to 16 rows, one column vector (4 columns) at a time in f32 lanes,
// flushed into float64 per-(a, column) sums; per-column parameters are float32 arrays.

const ROW_BLOCK = 16;

@inline function flushTo(acc: usize, v: v128): void {
  v128.store(acc, f64x2.add(v128.load(acc), f64x2.promote_low_f32x4(v)));
  v128.store(acc, f64x2.add(v128.load(acc, 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1))), 16);
}

/**
 * Row-mode reductions over rows [r0, r1). kind 0: acc1 += x - shift (shift may be 0);
 * kind 1 also acc2 += (x - shift)^2; kind 2: acc1 += dy, acc2 += dy*xhat with xhat = ((x - hi) - lo)*rstd.
 * Column parameters (hi, lo, rstd) are float32 per (a, column); acc1, acc2 float64 per (a, column).
 */
export function rows_reduce_f32(x: usize, dy: usize, S: i32, cols: i32, r0: i32, r1: i32, hi: usize, lo: usize, rstd: usize, acc1: usize, acc2: usize, kind: i32): void {
  const rowBytes = <usize>cols << 2;
  let r = r0;
  while (r < r1) {
    const a = r / S;
    const end = min(min(r + ROW_BLOCK, r1), (a + 1) * S);
    const pa = <usize>a * <usize>cols;
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const pc = (pa + <usize>c) << 2;
      const vh = hi == 0 ? f32x4.splat(0) : v128.load(hi + pc);
      const vl = lo == 0 ? f32x4.splat(0) : v128.load(lo + pc);
      const vr = rstd == 0 ? f32x4.splat(1) : v128.load(rstd + pc);
      let s1 = f32x4.splat(0);
      let s2 = f32x4.splat(0);
      let px = x + <usize>r * rowBytes + (<usize>c << 2);
      let pd = dy + <usize>r * rowBytes + (<usize>c << 2);
      for (let row = r; row < end; row++) {
        const d = f32x4.sub(f32x4.sub(v128.load(px), vh), vl);
        if (kind == 2) {
          const g = v128.load(pd);
          s1 = f32x4.add(s1, g);
          s2 = f32x4.add(s2, f32x4.mul(g, f32x4.mul(d, vr)));
        } else {
          s1 = f32x4.add(s1, d);
          if (kind == 1) s2 = f32x4.add(s2, f32x4.mul(d, d));
        }
        px += rowBytes;
        pd += rowBytes;
      }
      flushTo(acc1 + ((pa + <usize>c) << 3), s1);
      if (kind != 0) flushTo(acc2 + ((pa + <usize>c) << 3), s2);
    }
    for (; c < cols; c++) {
      const pc = (pa + <usize>c) << 2;
      const h = hi == 0 ? <f32>0 : load<f32>(hi + pc);
      const l = lo == 0 ? <f32>0 : load<f32>(lo + pc);
      const rs = rstd == 0 ? <f32>1 : load<f32>(rstd + pc);
      let s1: f64 = 0;
      let s2: f64 = 0;
      for (let row = r; row < end; row++) {
        const o = (<usize>row * <usize>cols + <usize>c) << 2;
        const d = load<f32>(x + o) - h - l;
        if (kind == 2) {
          const g = load<f32>(dy + o);
          s1 += g;
          s2 += <f64>g * <f64>(d * rs);
        } else {
          s1 += d;
          if (kind == 1) s2 += <f64>d * <f64>d;
        }
      }
      const p1 = acc1 + ((pa + <usize>c) << 3);
      store<f64>(p1, load<f64>(p1) + s1);
      if (kind != 0) {
        const p2 = acc2 + ((pa + <usize>c) << 3);
        store<f64>(p2, load<f64>(p2) + s2);
      }
    }
    r = end;
  }
}

/**
 * Row-mode elementwise pass over rows [r0, r1), with t = ((x - hi) - lo):
 * kind 0: out = t*p1 + p2 (forward, p1 = rstd*gamma, p2 = beta);
 * kind 1: out = p1*dy - p2 - t*rstd*p3 (dx, p1 = rstd*gamma, p2 = c1, p3 = c2: dxTerm1 + dxTerm3 + dxTerm2 with c1 = -dxTerm3, t*rstd*c2 = -dxTerm2).
 */
export function rows_apply_f32(out: usize, x: usize, dy: usize, S: i32, cols: i32, r0: i32, r1: i32, hi: usize, lo: usize, rstd: usize, p1: usize, p2: usize, p3: usize, kind: i32): void {
  const rowBytes = <usize>cols << 2;
  for (let row = r0; row < r1; row++) {
    const a = row / S;
    const pa = (<usize>a * <usize>cols) << 2;
    const o = <usize>row * rowBytes;
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const pc = pa + (<usize>c << 2);
      const oc = o + (<usize>c << 2);
      const t = f32x4.sub(f32x4.sub(v128.load(x + oc), v128.load(hi + pc)), v128.load(lo + pc));
      if (kind == 0) {
        v128.store(out + oc, f32x4.add(f32x4.mul(t, v128.load(p1 + pc)), v128.load(p2 + pc)));
      } else {
        const xhat = f32x4.mul(t, v128.load(rstd + pc));
        v128.store(out + oc, f32x4.sub(f32x4.sub(f32x4.mul(v128.load(p1 + pc), v128.load(dy + oc)), v128.load(p2 + pc)), f32x4.mul(xhat, v128.load(p3 + pc))));
      }
    }
    for (; c < cols; c++) {
      const pc = pa + (<usize>c << 2);
      const oc = o + (<usize>c << 2);
      const t = load<f32>(x + oc) - load<f32>(hi + pc) - load<f32>(lo + pc);
      if (kind == 0) store<f32>(out + oc, t * load<f32>(p1 + pc) + load<f32>(p2 + pc));
      else store<f32>(out + oc, load<f32>(p1 + pc) * load<f32>(dy + oc) - load<f32>(p2 + pc) - t * load<f32>(rstd + pc) * load<f32>(p3 + pc));
    }
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
export function group_backward_f32(dx: usize, dy: usize, x: usize, S: i32, G: i32, B: i32, K: i32, w: usize, mean: usize, rstd: usize, batch: bool, dw: usize, db: usize, q0: i32, q1: i32, fast: bool): void {
  groupBackward<f32>(dx, dy, x, S, G, B, K, w, mean, rstd, batch, dw, db, q0, q1, fast);
}
export function group_backward_f64(dx: usize, dy: usize, x: usize, S: i32, G: i32, B: i32, K: i32, w: usize, mean: usize, rstd: usize, batch: bool, dw: usize, db: usize, q0: i32, q1: i32, fast: bool): void {
  groupBackward<f64>(dx, dy, x, S, G, B, K, w, mean, rstd, batch, dw, db, q0, q1, fast);
}
export function rows_moment_f32(x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, acc: usize, power: i32): void {
  rowsMoment<f32>(x, S, cols, r0, r1, colMean, acc, power);
}
export function rows_moment_f64(x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, acc: usize, power: i32): void {
  rowsMoment<f64>(x, S, cols, r0, r1, colMean, acc, power);
}
export function rows_affine_f32(y: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, m: usize, sc: usize, sh: usize): void {
  rowsAffine<f32>(y, x, S, cols, r0, r1, m, sc, sh);
}
export function rows_affine_f64(y: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, m: usize, sc: usize, sh: usize): void {
  rowsAffine<f64>(y, x, S, cols, r0, r1, m, sc, sh);
}
export function rows_backward_sums_f32(x: usize, dy: usize, S: i32, cols: i32, r0: i32, r1: i32, m: usize, rs: usize, a1: usize, a2: usize): void {
  rowsBackwardSums<f32>(x, dy, S, cols, r0, r1, m, rs, a1, a2);
}
export function rows_backward_sums_f64(x: usize, dy: usize, S: i32, cols: i32, r0: i32, r1: i32, m: usize, rs: usize, a1: usize, a2: usize): void {
  rowsBackwardSums<f64>(x, dy, S, cols, r0, r1, m, rs, a1, a2);
}
export function rows_dx_f32(dx: usize, dy: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, m: usize, rs: usize, k1: usize, c1: usize, c2: usize): void {
  rowsDx<f32>(dx, dy, x, S, cols, r0, r1, m, rs, k1, c1, c2);
}
export function rows_dx_f64(dx: usize, dy: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, m: usize, rs: usize, k1: usize, c1: usize, c2: usize): void {
  rowsDx<f64>(dx, dy, x, S, cols, r0, r1, m, rs, k1, c1, c2);
}
