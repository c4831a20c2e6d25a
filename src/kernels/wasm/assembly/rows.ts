// Row mode: rows of cols = G*B contiguous values (channels-last, BatchNorm1d: B small), SIMD across
// columns. A thread takes rows [r0, r1) (row = a*S + s) and adds into its own partial sums, f64 per
// (a, column), indexed a*cols + c. The statistics, the per-column parameters and the adding of the
// threads' partials run here too, so the host passes pointers only.
//
// Float32 lanes (`_f32x4`, large float32 groups): rows in memory order, column sums in a per-thread
// float32 scratch (`lane`) flushed into float64 once per block of 16 rows; the mean's float32 hi is
// subtracted (x - hi is exact near the mean) and its lo folded into each column's shift and c1. Otherwise (`_f32`, `_f64`: float64 data, or float32 groups
// too small for float32 sums) every value is widened to float64 and the mean kept as hi + lo in float64.

import { load1, load2, rstdHolds, store1, store2, varianceHolds } from './lanes';

const ROW_BLOCK = 16;

@inline function flushTo(acc: usize, v: v128): void {
  v128.store(acc, f64x2.add(v128.load(acc), f64x2.promote_low_f32x4(v)));
  v128.store(acc, f64x2.add(v128.load(acc, 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1))), 16);
}

@inline function zeroF64(p: usize, n: i32): void {
  memory.fill(p, 0, <usize>n << 3);
}

/** The last row (exclusive) of the block that starts at row r: at most 16 rows, inside one a, before r1. */
@inline function blockEnd(r: i32, r1: i32, S: i32): i32 {
  return min(min(r + ROW_BLOCK, r1), (r / S + 1) * S);
}

/** Zeroes n bytes at dst (typed-array fill() on shared memory is ten times slower). */
export function zero(dst: usize, n: usize): void {
  memory.fill(dst, 0, n);
}

/** Adds parts 1..parts-1 of n f64 values (stride bytes apart) into part 0: the threads' partial sums. */
export function add_partials(acc: usize, parts: i32, stride: usize, n: i32): void {
  for (let t = 1; t < parts; t++) {
    const src = acc + <usize>t * stride;
    let i = 0;
    for (; i + 2 <= n; i += 2) {
      const o = <usize>i << 3;
      v128.store(acc + o, f64x2.add(v128.load(acc + o), v128.load(src + o)));
    }
    for (; i < n; i++) {
      const o = <usize>i << 3;
      store<f64>(acc + o, load<f64>(acc + o) + load<f64>(src + o));
    }
  }
}

// ---- float32 lanes ----
// Every pass walks rows in memory order (sequential streams; a walk down columns conflicts in L1 when a
// row is a multiple of 4 KB). Where a thread's rows fit in cache, four rows a step, so each column
// parameter is loaded once per four rows; beyond it one row a step, as four interleaved streams per
// array slow the prefetchers more than the loads cost. Sums go to float32 column sums in `lane`
// (2*cols values per thread) flushed into float64 every block.

/** A thread's share of an array up to this many bytes goes four rows a step (measured: shape B 1.4x faster so, A channels-last 1.2x slower). */
const FOUR_ROWS_MAX_BYTES: usize = 4 << 20;

@inline function fourRows(r0: i32, r1: i32, rowBytes: usize): bool {
  return <usize>(r1 - r0) * rowBytes <= FOUR_ROWS_MAX_BYTES;
}

/** Adds a block's float32 column sums into the float64 ones and zeroes them. */
@inline function flushLane(acc: usize, lane: usize, cols: i32): void {
  let c = 0;
  for (; c + 4 <= cols; c += 4) flushTo(acc + (<usize>c << 3), v128.load(lane + (<usize>c << 2)));
  for (; c < cols; c++) store<f64>(acc + (<usize>c << 3), load<f64>(acc + (<usize>c << 3)) + <f64>load<f32>(lane + (<usize>c << 2)));
  memory.fill(lane, 0, <usize>cols << 2);
}

/** The last row (exclusive) of the rows from r on that share block a = r/S, before r1. */
@inline function spanEnd(r: i32, r1: i32, S: i32): i32 {
  return min(r1, (r / S + 1) * S);
}

/** shift[a, c] = the float32 mean of group g's values in the first rows (up to 16) of block a, for every column c of g. */
export function rows_shift_f32x4(x: usize, S: i32, A: i32, G: i32, B: i32, shift: usize): void {
  const cols = G * B;
  const rows = min(S, ROW_BLOCK);
  for (let a = 0; a < A; a++) {
    // float32 column sums of the first rows (a shift needs no more: the moments correct for it), then each group's mean
    const ps = shift + (<usize>(a * cols) << 2);
    memory.fill(ps, 0, <usize>cols << 2);
    for (let r = 0; r < rows; r++) {
      const px = x + ((<usize>(a * S + r) * <usize>cols) << 2);
      let c = 0;
      for (; c + 4 <= cols; c += 4) v128.store(ps + (<usize>c << 2), f32x4.add(v128.load(ps + (<usize>c << 2)), v128.load(px + (<usize>c << 2))));
      for (; c < cols; c++) store<f32>(ps + (<usize>c << 2), load<f32>(ps + (<usize>c << 2)) + load<f32>(px + (<usize>c << 2)));
    }
    for (let g = 0; g < G; g++) {
      const pg = ps + (<usize>(g * B) << 2);
      let sum: f64 = 0;
      for (let b = 0; b < B; b++) sum += <f64>load<f32>(pg + (<usize>b << 2));
      const m = <f32>(sum / <f64>(rows * B));
      for (let b = 0; b < B; b++) store<f32>(pg + (<usize>b << 2), m);
    }
  }
}

/** acc1[a, c] = sum (x - shift), acc2[a, c] = sum (x - shift)^2 over rows [r0, r1); acc1, acc2 hold A*cols values, zeroed first. */
export function rows_moments_f32x4(x: usize, S: i32, A: i32, cols: i32, r0: i32, r1: i32, shift: usize, acc1: usize, acc2: usize, lane: usize): void {
  zeroF64(acc1, A * cols);
  zeroF64(acc2, A * cols);
  const lane2 = lane + (<usize>cols << 2);
  memory.fill(lane, 0, <usize>cols << 3);
  const rowBytes = <usize>cols << 2;
  const four = fourRows(r0, r1, rowBytes);
  for (let r = r0; r < r1; ) {
    const end = blockEnd(r, r1, S);
    const pa = <usize>(r / S) * <usize>cols;
    const ph = shift + (pa << 2);
    let row = r;
    for (; four && row + 4 <= end; row += 4) {
      const px = x + <usize>row * rowBytes;
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const o = <usize>c << 2;
        const vh = v128.load(ph + o);
        const d0 = f32x4.sub(v128.load(px + o), vh);
        const d1 = f32x4.sub(v128.load(px + rowBytes + o), vh);
        const d2 = f32x4.sub(v128.load(px + 2 * rowBytes + o), vh);
        const d3 = f32x4.sub(v128.load(px + 3 * rowBytes + o), vh);
        v128.store(lane + o, f32x4.add(v128.load(lane + o), f32x4.add(f32x4.add(d0, d1), f32x4.add(d2, d3))));
        v128.store(lane2 + o, f32x4.add(v128.load(lane2 + o), f32x4.add(f32x4.add(f32x4.mul(d0, d0), f32x4.mul(d1, d1)), f32x4.add(f32x4.mul(d2, d2), f32x4.mul(d3, d3)))));
      }
      for (; c < cols; c++) {
        const o = <usize>c << 2;
        for (let k: usize = 0; k < 4; k++) {
          const d = load<f32>(px + k * rowBytes + o) - load<f32>(ph + o);
          store<f32>(lane + o, load<f32>(lane + o) + d);
          store<f32>(lane2 + o, load<f32>(lane2 + o) + d * d);
        }
      }
    }
    for (; row < end; row++) {
      const px = x + <usize>row * rowBytes;
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const o = <usize>c << 2;
        const d = f32x4.sub(v128.load(px + o), v128.load(ph + o));
        v128.store(lane + o, f32x4.add(v128.load(lane + o), d));
        v128.store(lane2 + o, f32x4.add(v128.load(lane2 + o), f32x4.mul(d, d)));
      }
      for (; c < cols; c++) {
        const o = <usize>c << 2;
        const d = load<f32>(px + o) - load<f32>(ph + o);
        store<f32>(lane + o, load<f32>(lane + o) + d);
        store<f32>(lane2 + o, load<f32>(lane2 + o) + d * d);
      }
    }
    flushLane(acc1 + (pa << 3), lane, cols);
    flushLane(acc2 + (pa << 3), lane2, cols);
    r = end;
  }
}

/**
 * Statistics from the added moments around `shift`: mean = shift + s1/M, variance = s2/M - (s1/M)^2,
 * rstd per (a, g). Returns bit 1 with `check` where the shift proved far from the mean (float32 sums would
 * have lost digits: (s1/M)^2 > variance), having moved that group's shift to its mean: run the moments
 * again; bit 2 where float32 lanes do not hold a group's squares or rstd: run widened to float64.
 */
export function rows_moment_stats_f32x4(acc1: usize, acc2: usize, shift: usize, A: i32, G: i32, B: i32, M: f64, eps: f64, mean: usize, variance: usize, rstd: usize, check: bool): i32 {
  let far = 0;
  const invM = 1 / M;
  // groups q = a*G + g hold columns q*B .. q*B + B - 1 (cols = G*B per block a)
  for (let q = 0; q < A * G; q++) {
    const c0 = <usize>(q * B);
    let s1: f64 = 0;
    let s2: f64 = 0;
    for (let b = 0; b < B; b++) {
      s1 += load<f64>(acc1 + ((c0 + <usize>b) << 3));
      s2 += load<f64>(acc2 + ((c0 + <usize>b) << 3));
    }
    const d = s1 * invM;
    const v = Math.max(0, s2 * invM - d * d);
    const m = <f64>load<f32>(shift + (c0 << 2)) + d;
    if (check && d * d > v) {
      far |= 1;
      for (let b = 0; b < B; b++) store<f32>(shift + ((c0 + <usize>b) << 2), <f32>m);
    }
    const r = 1 / Math.sqrt(v + eps);
    if (!varianceHolds(m, v) || !rstdHolds(r)) far |= 2;
    store<f64>(mean + (<usize>q << 3), m);
    store<f64>(variance + (<usize>q << 3), v);
    store<f64>(rstd + (<usize>q << 3), r);
  }
  return far;
}

/**
 * Per-column float32 parameters from per-(a, g) mean and rstd: hi = the mean rounded to float32, scale =
 * rstd*weight, shift = bias - lo*scale with lo = mean - hi (in float64), so y = (x - hi)*scale + shift
 * (weight, bias: float32 per affine entry g*K + b/R, or 0: absent).
 */
export function rows_columns_f32x4(A: i32, G: i32, B: i32, K: i32, mean: usize, rstd: usize, weight: usize, bias: usize, hi: usize, scale: usize, shift: usize): void {
  const R = B / K;
  for (let a = 0; a < A; a++) {
    for (let g = 0; g < G; g++) {
      const q = a * G + g;
      const m = load<f64>(mean + (<usize>q << 3));
      const r = load<f64>(rstd + (<usize>q << 3));
      const h = <f32>m;
      const lo = m - <f64>h;
      for (let b = 0; b < B; b++) {
        const c = <usize>(q * B + b) << 2;
        const j = <usize>(g * K + (R == 1 ? b : b / R)) << 2;
        const sc = weight == 0 ? r : r * <f64>load<f32>(weight + j);
        store<f32>(hi + c, h);
        store<f32>(scale + c, <f32>sc);
        store<f32>(shift + c, <f32>((bias == 0 ? 0 : <f64>load<f32>(bias + j)) - lo * sc));
      }
    }
  }
}

/** y = (x - hi)*scale + shift over rows [r0, r1), four rows a step where they fit in cache. */
export function rows_normalize_f32x4(y: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, hi: usize, scale: usize, shift: usize): void {
  const rowBytes = <usize>cols << 2;
  const four = fourRows(r0, r1, rowBytes);
  for (let r = r0; r < r1; ) {
    const end = spanEnd(r, r1, S);
    const pa = (<usize>(r / S) * <usize>cols) << 2;
    let row = r;
    for (; four && row + 4 <= end; row += 4) {
      const o = <usize>row * rowBytes;
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const pc = pa + (<usize>c << 2);
        const oc = o + (<usize>c << 2);
        const vh = v128.load(hi + pc);
        const va = v128.load(scale + pc);
        const vb = v128.load(shift + pc);
        v128.store(y + oc, f32x4.add(f32x4.mul(f32x4.sub(v128.load(x + oc), vh), va), vb));
        v128.store(y + oc + rowBytes, f32x4.add(f32x4.mul(f32x4.sub(v128.load(x + oc + rowBytes), vh), va), vb));
        v128.store(y + oc + 2 * rowBytes, f32x4.add(f32x4.mul(f32x4.sub(v128.load(x + oc + 2 * rowBytes), vh), va), vb));
        v128.store(y + oc + 3 * rowBytes, f32x4.add(f32x4.mul(f32x4.sub(v128.load(x + oc + 3 * rowBytes), vh), va), vb));
      }
      for (; c < cols; c++) {
        const pc = pa + (<usize>c << 2);
        for (let k: usize = 0; k < 4; k++) {
          const oc = o + k * rowBytes + (<usize>c << 2);
          store<f32>(y + oc, (load<f32>(x + oc) - load<f32>(hi + pc)) * load<f32>(scale + pc) + load<f32>(shift + pc));
        }
      }
    }
    for (; row < end; row++) {
      const o = <usize>row * rowBytes;
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const pc = pa + (<usize>c << 2);
        const oc = o + (<usize>c << 2);
        v128.store(y + oc, f32x4.add(f32x4.mul(f32x4.sub(v128.load(x + oc), v128.load(hi + pc)), v128.load(scale + pc)), v128.load(shift + pc)));
      }
      for (; c < cols; c++) {
        const pc = pa + (<usize>c << 2);
        const oc = o + (<usize>c << 2);
        store<f32>(y + oc, (load<f32>(x + oc) - load<f32>(hi + pc)) * load<f32>(scale + pc) + load<f32>(shift + pc));
      }
    }
    r = end;
  }
}

/** acc1[a, c] = sum dy, acc2[a, c] = sum dy*(x - hi) over rows [r0, r1) (lo and rstd applied later); zeroed first. */
export function rows_backward_sums_f32x4(x: usize, dy: usize, S: i32, A: i32, cols: i32, r0: i32, r1: i32, hi: usize, acc1: usize, acc2: usize, lane: usize): void {
  zeroF64(acc1, A * cols);
  zeroF64(acc2, A * cols);
  const lane2 = lane + (<usize>cols << 2);
  memory.fill(lane, 0, <usize>cols << 3);
  const rowBytes = <usize>cols << 2;
  const four = fourRows(r0, r1, rowBytes);
  for (let r = r0; r < r1; ) {
    const end = blockEnd(r, r1, S);
    const pa = <usize>(r / S) * <usize>cols;
    const ph = hi + (pa << 2);
    let row = r;
    for (; four && row + 4 <= end; row += 4) {
      const o = <usize>row * rowBytes;
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const oc = o + (<usize>c << 2);
        const vh = v128.load(ph + (<usize>c << 2));
        const g0 = v128.load(dy + oc);
        const g1 = v128.load(dy + oc + rowBytes);
        const g2 = v128.load(dy + oc + 2 * rowBytes);
        const g3 = v128.load(dy + oc + 3 * rowBytes);
        const t0 = f32x4.mul(g0, f32x4.sub(v128.load(x + oc), vh));
        const t1 = f32x4.mul(g1, f32x4.sub(v128.load(x + oc + rowBytes), vh));
        const t2 = f32x4.mul(g2, f32x4.sub(v128.load(x + oc + 2 * rowBytes), vh));
        const t3 = f32x4.mul(g3, f32x4.sub(v128.load(x + oc + 3 * rowBytes), vh));
        const l = <usize>c << 2;
        v128.store(lane + l, f32x4.add(v128.load(lane + l), f32x4.add(f32x4.add(g0, g1), f32x4.add(g2, g3))));
        v128.store(lane2 + l, f32x4.add(v128.load(lane2 + l), f32x4.add(f32x4.add(t0, t1), f32x4.add(t2, t3))));
      }
      for (; c < cols; c++) {
        const l = <usize>c << 2;
        for (let k: usize = 0; k < 4; k++) {
          const oc = o + k * rowBytes + l;
          const g = load<f32>(dy + oc);
          store<f32>(lane + l, load<f32>(lane + l) + g);
          store<f32>(lane2 + l, load<f32>(lane2 + l) + g * (load<f32>(x + oc) - load<f32>(ph + l)));
        }
      }
    }
    for (; row < end; row++) {
      const o = <usize>row * rowBytes;
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const oc = o + (<usize>c << 2);
        const l = <usize>c << 2;
        const g = v128.load(dy + oc);
        v128.store(lane + l, f32x4.add(v128.load(lane + l), g));
        v128.store(lane2 + l, f32x4.add(v128.load(lane2 + l), f32x4.mul(g, f32x4.sub(v128.load(x + oc), v128.load(ph + l)))));
      }
      for (; c < cols; c++) {
        const l = <usize>c << 2;
        const g = load<f32>(dy + o + l);
        store<f32>(lane + l, load<f32>(lane + l) + g);
        store<f32>(lane2 + l, load<f32>(lane2 + l) + g * (load<f32>(x + o + l) - load<f32>(ph + l)));
      }
    }
    flushLane(acc1 + (pa << 3), lane, cols);
    flushLane(acc2 + (pa << 3), lane2, cols);
    r = end;
  }
}

/** dx = k1*dy - c1 - xhat*c2 with xhat = (x - hi)*rstd (c1 holds the mean's lo part), over rows [r0, r1), four rows a step where they fit in cache. */
export function rows_dx_f32x4(dx: usize, dy: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, hi: usize, rstd: usize, k1: usize, c1: usize, c2: usize): void {
  const rowBytes = <usize>cols << 2;
  const four = fourRows(r0, r1, rowBytes);
  for (let r = r0; r < r1; ) {
    const end = spanEnd(r, r1, S);
    const pa = (<usize>(r / S) * <usize>cols) << 2;
    let row = r;
    for (; four && row + 4 <= end; row += 4) {
      const o = <usize>row * rowBytes;
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const pc = pa + (<usize>c << 2);
        const oc = o + (<usize>c << 2);
        const vh = v128.load(hi + pc);
        const vr = v128.load(rstd + pc);
        const vk = v128.load(k1 + pc);
        const v1 = v128.load(c1 + pc);
        const v2 = v128.load(c2 + pc);
        for (let k: usize = 0; k < 4; k++) {
          const ok = oc + k * rowBytes;
          const xhat = f32x4.mul(f32x4.sub(v128.load(x + ok), vh), vr);
          v128.store(dx + ok, f32x4.sub(f32x4.sub(f32x4.mul(vk, v128.load(dy + ok)), v1), f32x4.mul(xhat, v2)));
        }
      }
      for (; c < cols; c++) {
        const pc = pa + (<usize>c << 2);
        for (let k: usize = 0; k < 4; k++) {
          const oc = o + k * rowBytes + (<usize>c << 2);
          const xhat = (load<f32>(x + oc) - load<f32>(hi + pc)) * load<f32>(rstd + pc);
          store<f32>(dx + oc, load<f32>(k1 + pc) * load<f32>(dy + oc) - load<f32>(c1 + pc) - xhat * load<f32>(c2 + pc));
        }
      }
    }
    for (; row < end; row++) {
      const o = <usize>row * rowBytes;
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const pc = pa + (<usize>c << 2);
        const oc = o + (<usize>c << 2);
        const xhat = f32x4.mul(f32x4.sub(v128.load(x + oc), v128.load(hi + pc)), v128.load(rstd + pc));
        v128.store(dx + oc, f32x4.sub(f32x4.sub(f32x4.mul(v128.load(k1 + pc), v128.load(dy + oc)), v128.load(c1 + pc)), f32x4.mul(xhat, v128.load(c2 + pc))));
      }
      for (; c < cols; c++) {
        const pc = pa + (<usize>c << 2);
        const oc = o + (<usize>c << 2);
        const xhat = (load<f32>(x + oc) - load<f32>(hi + pc)) * load<f32>(rstd + pc);
        store<f32>(dx + oc, load<f32>(k1 + pc) * load<f32>(dy + oc) - load<f32>(c1 + pc) - xhat * load<f32>(c2 + pc));
      }
    }
    r = end;
  }
}

// ---- float64 (every value widened): row-major passes, f64 per-column parameters ----

/**
 * colMean 0: acc1[a, c] = sum x; else acc1[a, c] = sum d and acc2[a, c] = sum d^2, d = x - colMean[a, c]
 * (exact near the mean), over rows [r0, r1); zeroed first.
 */
function rowsSum<T>(x: usize, S: i32, A: i32, cols: i32, r0: i32, r1: i32, colMean: usize, acc1: usize, acc2: usize): void {
  zeroF64(acc1, A * cols);
  zeroF64(acc2, A * cols);
  const step = <usize>sizeof<T>();
  for (let row = r0; row < r1; row++) {
    const xr = x + <usize>row * <usize>cols * step;
    const pr = (<usize>(row / S) * <usize>cols) << 3;
    let c = 0;
    if (colMean == 0) {
      for (; c + 2 <= cols; c += 2) {
        const pa = acc1 + pr + (<usize>c << 3);
        v128.store(pa, f64x2.add(v128.load(pa), load2<T>(xr + <usize>c * step)));
      }
      for (; c < cols; c++) {
        const pa = acc1 + pr + (<usize>c << 3);
        store<f64>(pa, load<f64>(pa) + load1<T>(xr + <usize>c * step));
      }
      continue;
    }
    for (; c + 2 <= cols; c += 2) {
      const pc = pr + (<usize>c << 3);
      const d = f64x2.sub(load2<T>(xr + <usize>c * step), v128.load(colMean + pc));
      v128.store(acc1 + pc, f64x2.add(v128.load(acc1 + pc), d));
      v128.store(acc2 + pc, f64x2.add(v128.load(acc2 + pc), f64x2.mul(d, d)));
    }
    for (; c < cols; c++) {
      const pc = pr + (<usize>c << 3);
      const d = load1<T>(xr + <usize>c * step) - load<f64>(colMean + pc);
      store<f64>(acc1 + pc, load<f64>(acc1 + pc) + d);
      store<f64>(acc2 + pc, load<f64>(acc2 + pc) + d * d);
    }
  }
}

/**
 * From the added column sums: `sq` 0 (sums of x): hi = mean[q] = sum/M, and colMean per column; `sq` 1
 * (sums of d = x - hi and d^2, corrected two-pass): lo = mean(d), variance[q] = mean(d^2) - lo^2, rstd[q],
 * and the mean as mean[q] + meanLo[q] = hi + lo exactly (TwoSum): mean[q] is hi + lo rounded once.
 */
export function rows_sum_stats(acc1: usize, acc2: usize, A: i32, G: i32, B: i32, M: f64, eps: f64, sq: bool, mean: usize, meanLo: usize, colMean: usize, variance: usize, rstd: usize): void {
  for (let q = 0; q < A * G; q++) {
    let s1: f64 = 0;
    let s2: f64 = 0;
    for (let b = 0; b < B; b++) {
      s1 += load<f64>(acc1 + (<usize>(q * B + b) << 3));
      if (sq) s2 += load<f64>(acc2 + (<usize>(q * B + b) << 3));
    }
    const p = <usize>q << 3;
    if (sq) {
      const hi = load<f64>(mean + p);
      const lo = s1 / M;
      const v = Math.max(0, s2 / M - lo * lo);
      const m = hi + lo;
      const t = m - hi;
      store<f64>(mean + p, m);
      store<f64>(meanLo + p, (hi - (m - t)) + (lo - t));
      store<f64>(variance + p, v);
      store<f64>(rstd + p, 1 / Math.sqrt(v + eps));
    } else {
      store<f64>(mean + p, s1 / M);
      for (let b = 0; b < B; b++) store<f64>(colMean + (<usize>(q * B + b) << 3), s1 / M);
    }
  }
}

/**
 * Per-column float64 parameters: colMean = mean, scale = rstd*weight, shift = bias - meanLo*scale, so that
 * y = (x - colMean)*scale + shift = ((x - mean) - meanLo)*scale + bias (weight, bias of dtype T, or 0; meanLo 0: none).
 */
function rowsColumns<T>(A: i32, G: i32, B: i32, K: i32, mean: usize, meanLo: usize, rstd: usize, weight: usize, bias: usize, colMean: usize, scale: usize, shift: usize): void {
  const R = B / K;
  const step = <usize>sizeof<T>();
  for (let q = 0; q < A * G; q++) {
    const g = q % G;
    const m = load<f64>(mean + (<usize>q << 3));
    const lo = meanLo == 0 ? 0 : load<f64>(meanLo + (<usize>q << 3));
    const r = load<f64>(rstd + (<usize>q << 3));
    for (let b = 0; b < B; b++) {
      const c = <usize>(q * B + b) << 3;
      const j = <usize>(g * K + b / R) * step;
      const sc = weight == 0 ? r : r * load1<T>(weight + j);
      store<f64>(colMean + c, m);
      store<f64>(scale + c, sc);
      store<f64>(shift + c, (bias == 0 ? 0 : load1<T>(bias + j)) - lo * sc);
    }
  }
}

/** y = (x - colMean)*colScale + colShift */
function rowsAffine<T>(y: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, colScale: usize, colShift: usize): void {
  const step = <usize>sizeof<T>();
  for (let row = r0; row < r1; row++) {
    const o = <usize>row * <usize>cols * step;
    const pr = (<usize>(row / S) * <usize>cols) << 3;
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

/**
 * acc1[a, c] = sum dy, acc2[a, c] = sum dy*d, acc3[a, c] = sum d with d = x - colMean, over rows [r0, r1);
 * zeroed first (acc3: the batch mean's lost digits, lo = mean(d)).
 */
function rowsBackwardSums<T>(x: usize, dy: usize, S: i32, A: i32, cols: i32, r0: i32, r1: i32, colMean: usize, acc1: usize, acc2: usize, acc3: usize): void {
  zeroF64(acc1, A * cols);
  zeroF64(acc2, A * cols);
  zeroF64(acc3, A * cols);
  const step = <usize>sizeof<T>();
  for (let row = r0; row < r1; row++) {
    const o = <usize>row * <usize>cols * step;
    const pr = (<usize>(row / S) * <usize>cols) << 3;
    let c = 0;
    for (; c + 2 <= cols; c += 2) {
      const pc = pr + (<usize>c << 3);
      const d = load2<T>(dy + o + <usize>c * step);
      const t = f64x2.sub(load2<T>(x + o + <usize>c * step), v128.load(colMean + pc));
      v128.store(acc1 + pc, f64x2.add(v128.load(acc1 + pc), d));
      v128.store(acc2 + pc, f64x2.add(v128.load(acc2 + pc), f64x2.mul(d, t)));
      v128.store(acc3 + pc, f64x2.add(v128.load(acc3 + pc), t));
    }
    for (; c < cols; c++) {
      const pc = pr + (<usize>c << 3);
      const d = load1<T>(dy + o + <usize>c * step);
      store<f64>(acc1 + pc, load<f64>(acc1 + pc) + d);
      const t = load1<T>(x + o + <usize>c * step) - load<f64>(colMean + pc);
      store<f64>(acc2 + pc, load<f64>(acc2 + pc) + d * t);
      store<f64>(acc3 + pc, load<f64>(acc3 + pc) + t);
    }
  }
}

/** dx = k1*dy - c1 - xhat*c2 with xhat = (x - colMean)*colRstd */
function rowsDx<T>(dx: usize, dy: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, colRstd: usize, k1: usize, c1: usize, c2: usize): void {
  const step = <usize>sizeof<T>();
  for (let row = r0; row < r1; row++) {
    const o = <usize>row * <usize>cols * step;
    const pr = (<usize>(row / S) * <usize>cols) << 3;
    let c = 0;
    for (; c + 2 <= cols; c += 2) {
      const pc = pr + (<usize>c << 3);
      const xhat = f64x2.mul(f64x2.sub(load2<T>(x + o + <usize>c * step), v128.load(colMean + pc)), v128.load(colRstd + pc));
      const v = f64x2.sub(f64x2.sub(f64x2.mul(v128.load(k1 + pc), load2<T>(dy + o + <usize>c * step)), v128.load(c1 + pc)), f64x2.mul(xhat, v128.load(c2 + pc)));
      store2<T>(dx + o + <usize>c * step, v);
    }
    for (; c < cols; c++) {
      const pc = pr + (<usize>c << 3);
      const xhat = (load1<T>(x + o + <usize>c * step) - load<f64>(colMean + pc)) * load<f64>(colRstd + pc);
      store1<T>(dx + o + <usize>c * step, load<f64>(k1 + pc) * load1<T>(dy + o + <usize>c * step) - load<f64>(c1 + pc) - xhat * load<f64>(c2 + pc));
    }
  }
}

// ---- backward coefficients, both paths ----

/**
 * From the added sums (acc1 = sum dy, acc2 = sum dy*(x - mean), acc3 = sum (x - mean) per column):
 * with batch statistics lo = mean(x - mean) restores the cached mean's lost digits (float32 lanes, `mean` given:
 * the sums were around hi = the mean rounded to float32, and lo = mean - hi), xhat = ((x - mean) - lo)*rstd,
 * so sum dy*xhat = (acc2 - lo*acc1)*rstd. dweight[j] += sum dy*xhat, dbias[j] += sum dy (float64, per affine
 * entry); per column, in the reference's terms (reference/normalize.ts), k1*dy = dxTerm1 with k1 = rstd*w,
 * c1 = -dxTerm3 = rstd*sum(dxhat)/M (the mean term) less lo's share of the x̂ term, lo*rstd*c2, and
 * c2 = rstd*sum(dxhat*xhat)/M with xhat*c2 = -dxTerm2 (the x̂ term, on (x - mean)*rstd; rstd is applied apart,
 * as rstd^2 leaves float32's range first); C: the column parameters' type (f32 lanes or f64); W: the weight's.
 */
function rowsDxCoefs<W, C>(acc1: usize, acc2: usize, acc3: usize, A: i32, G: i32, B: i32, K: i32, M: f64, weight: usize, mean: usize, rstd: usize, batchStats: bool, dweight: usize, dbias: usize, k1: usize, c1: usize, c2: usize): void {
  const R = B / K;
  const cstep = <usize>sizeof<C>();
  for (let q = 0; q < A * G; q++) {
    const g = q % G;
    const r = load<f64>(rstd + (<usize>q << 3));
    let lo: f64 = 0;
    if (mean != 0) {
      // float32 lanes: the sums were taken around hi = the mean rounded to float32; lo = mean - hi
      const m = load<f64>(mean + (<usize>q << 3));
      lo = m - <f64><f32>m;
    } else if (batchStats) {
      for (let b = 0; b < B; b++) lo += load<f64>(acc3 + (<usize>(q * B + b) << 3));
      lo /= M;
    }
    let sumDxhat: f64 = 0;
    let sumDxhatXhat: f64 = 0;
    for (let b = 0; b < B; b++) {
      const c = <usize>(q * B + b);
      const j = <usize>(g * K + b / R);
      const w = weight == 0 ? 1 : load1<W>(weight + j * <usize>sizeof<W>());
      const sumDy = load<f64>(acc1 + (c << 3));
      // lo 0 (running statistics): left out, as 0*inf would be NaN
      const sumDyXhat = (lo == 0 ? load<f64>(acc2 + (c << 3)) : load<f64>(acc2 + (c << 3)) - lo * sumDy) * r;
      store<f64>(dbias + (j << 3), load<f64>(dbias + (j << 3)) + sumDy);
      store<f64>(dweight + (j << 3), load<f64>(dweight + (j << 3)) + sumDyXhat);
      sumDxhat += w * sumDy;
      sumDxhatXhat += w * sumDyXhat;
      store1<C>(k1 + c * cstep, r * w);
    }
    // c2v: xhat*c2v = -dxTerm2 (the x̂ term); c1v = -dxTerm3 (the mean term), less lo's share of the x̂ term
    const c2v = batchStats ? (r * sumDxhatXhat) / M : 0;
    const c1v = batchStats ? (lo == 0 ? (r * sumDxhat) / M : (r * sumDxhat) / M - lo * r * c2v) : 0;
    for (let b = 0; b < B; b++) {
      const c = <usize>(q * B + b) * cstep;
      store1<C>(c1 + c, c1v);
      store1<C>(c2 + c, c2v);
    }
  }
}

// ---- exports ----
export function rows_sum_f32(x: usize, S: i32, A: i32, cols: i32, r0: i32, r1: i32, colMean: usize, acc1: usize, acc2: usize): void {
  rowsSum<f32>(x, S, A, cols, r0, r1, colMean, acc1, acc2);
}
export function rows_sum_f64(x: usize, S: i32, A: i32, cols: i32, r0: i32, r1: i32, colMean: usize, acc1: usize, acc2: usize): void {
  rowsSum<f64>(x, S, A, cols, r0, r1, colMean, acc1, acc2);
}
export function rows_columns_f32(A: i32, G: i32, B: i32, K: i32, mean: usize, meanLo: usize, rstd: usize, weight: usize, bias: usize, colMean: usize, scale: usize, shift: usize): void {
  rowsColumns<f32>(A, G, B, K, mean, meanLo, rstd, weight, bias, colMean, scale, shift);
}
export function rows_columns_f64(A: i32, G: i32, B: i32, K: i32, mean: usize, meanLo: usize, rstd: usize, weight: usize, bias: usize, colMean: usize, scale: usize, shift: usize): void {
  rowsColumns<f64>(A, G, B, K, mean, meanLo, rstd, weight, bias, colMean, scale, shift);
}
export function rows_affine_f32(y: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, scale: usize, shift: usize): void {
  rowsAffine<f32>(y, x, S, cols, r0, r1, colMean, scale, shift);
}
export function rows_affine_f64(y: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, scale: usize, shift: usize): void {
  rowsAffine<f64>(y, x, S, cols, r0, r1, colMean, scale, shift);
}
export function rows_backward_sums_f32(x: usize, dy: usize, S: i32, A: i32, cols: i32, r0: i32, r1: i32, colMean: usize, acc1: usize, acc2: usize, acc3: usize): void {
  rowsBackwardSums<f32>(x, dy, S, A, cols, r0, r1, colMean, acc1, acc2, acc3);
}
export function rows_backward_sums_f64(x: usize, dy: usize, S: i32, A: i32, cols: i32, r0: i32, r1: i32, colMean: usize, acc1: usize, acc2: usize, acc3: usize): void {
  rowsBackwardSums<f64>(x, dy, S, A, cols, r0, r1, colMean, acc1, acc2, acc3);
}
export function rows_dx_f32(dx: usize, dy: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, colRstd: usize, k1: usize, c1: usize, c2: usize): void {
  rowsDx<f32>(dx, dy, x, S, cols, r0, r1, colMean, colRstd, k1, c1, c2);
}
export function rows_dx_f64(dx: usize, dy: usize, x: usize, S: i32, cols: i32, r0: i32, r1: i32, colMean: usize, colRstd: usize, k1: usize, c1: usize, c2: usize): void {
  rowsDx<f64>(dx, dy, x, S, cols, r0, r1, colMean, colRstd, k1, c1, c2);
}
/** float32 lanes: float32 weight, float32 column parameters */
export function rows_dx_coefs_f32x4(acc1: usize, acc2: usize, A: i32, G: i32, B: i32, K: i32, M: f64, weight: usize, mean: usize, rstd: usize, batchStats: bool, dweight: usize, dbias: usize, k1: usize, c1: usize, c2: usize): void {
  rowsDxCoefs<f32, f32>(acc1, acc2, 0, A, G, B, K, M, weight, mean, rstd, batchStats, dweight, dbias, k1, c1, c2);
}
/** widened float32: float32 weight, float64 column parameters */
export function rows_dx_coefs_f32(acc1: usize, acc2: usize, acc3: usize, A: i32, G: i32, B: i32, K: i32, M: f64, weight: usize, rstd: usize, batchStats: bool, dweight: usize, dbias: usize, k1: usize, c1: usize, c2: usize): void {
  rowsDxCoefs<f32, f64>(acc1, acc2, acc3, A, G, B, K, M, weight, 0, rstd, batchStats, dweight, dbias, k1, c1, c2);
}
export function rows_dx_coefs_f64(acc1: usize, acc2: usize, acc3: usize, A: i32, G: i32, B: i32, K: i32, M: f64, weight: usize, rstd: usize, batchStats: bool, dweight: usize, dbias: usize, k1: usize, c1: usize, c2: usize): void {
  rowsDxCoefs<f64, f64>(acc1, acc2, acc3, A, G, B, K, M, weight, 0, rstd, batchStats, dweight, dbias, k1, c1, c2);
}
