// Loads and stores shared by group mode (norm.ts) and row mode (rows.ts): float32 or float64 values
// widened to f64x2 lanes (load2/store2) or to one f64 (load1/store1).

@inline export function load2<T>(ptr: usize): v128 {
  if (sizeof<T>() == 4) return f64x2.promote_low_f32x4(v128.load64_zero(ptr));
  return v128.load(ptr);
}

@inline export function store2<T>(ptr: usize, v: v128): void {
  if (sizeof<T>() == 4) v128.store64_lane(ptr, f32x4.demote_f64x2_zero(v), 0);
  else v128.store(ptr, v);
}

@inline export function load1<T>(ptr: usize): f64 {
  return sizeof<T>() == 4 ? <f64>load<f32>(ptr) : load<f64>(ptr);
}

@inline export function store1<T>(ptr: usize, v: f64): void {
  if (sizeof<T>() == 4) store<f32>(ptr, <f32>v);
  else store<f64>(ptr, v);
}

@inline export function hsum(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

// float32 lanes hold squares and rstd only inside float32's normal range: a group whose variance falls
// below LANES_VAR_MIN, whose float32 sums overflow (|x - mean| beyond ~1e19), or whose rstd falls below
// LANES_RSTD_MIN (|x| near 1e38) is computed widened to float64 instead (the host's lanesHold in rows.ts
// applies the rstd bound to given statistics)
export const LANES_VAR_MIN: f64 = 1e-24;
export const LANES_RSTD_MIN: f64 = 1e-30;

/** Whether float32 lanes held a group's moments: mean and variance finite, variance not below LANES_VAR_MIN. */
@inline export function varianceHolds(mean: f64, variance: f64): bool {
  return isFinite(mean) && isFinite(variance) && variance >= LANES_VAR_MIN;
}

/** Whether float32 lanes hold a group's rstd. */
@inline export function rstdHolds(rstd: f64): bool {
  return rstd >= LANES_RSTD_MIN;
}
