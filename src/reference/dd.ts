/**
 * Double-double arithmetic: a value is the unevaluated sum hi + lo of two float64 with |lo| <= ulp(hi)/2,
 * about 106 bits of significand, so the oracle's sums and products keep what float64 would cancel away.
 *
 * Method: error-free transformations (Knuth's two-sum, Dekker's two-product with Veltkamp's split, no FMA
 * in JavaScript), and the accurate add, multiply, divide and square root of the QD library.
 *
 * References: T. J. Dekker, "A floating-point technique for extending the available precision",
 * Numer. Math. 18 (1971); Y. Hida, X. S. Li, D. H. Bailey, "Library for double-double and quad-double
 * arithmetic" (QD), 2007.
 */

export interface DD {
  readonly hi: number;
  readonly lo: number;
}

/** Above this, Veltkamp's split of a would overflow: split a*2^-28 instead. */
const SPLIT_MAX = 6.69692879491417e299;
const SPLITTER = 134217729; // 2^27 + 1

function dd(hi: number, lo: number): DD {
  // a non-finite hi carries no low part (its error terms are NaN)
  return Number.isFinite(hi) ? { hi, lo } : { hi, lo: 0 };
}

export function fromNumber(a: number): DD {
  return { hi: a, lo: 0 };
}

/** hi + lo with |lo| <= ulp(hi)/2, given |a| >= |b| or a = 0. */
function quickTwoSum(a: number, b: number): DD {
  const s = a + b;
  return dd(s, b - (s - a));
}

/** a + b exactly as s + e (Knuth). */
export function twoSum(a: number, b: number): DD {
  const s = a + b;
  const bb = s - a;
  return dd(s, a - (s - bb) + (b - bb));
}

function split(a: number): [number, number] {
  if (Math.abs(a) > SPLIT_MAX) {
    const [h, l] = split(a * 3.725290298461914e-9); // 2^-28
    return [h * 268435456, l * 268435456];
  }
  const c = SPLITTER * a;
  const hi = c - (c - a);
  return [hi, a - hi];
}

/** a*b exactly as p + e (Dekker), unless it over- or underflows. */
export function twoProd(a: number, b: number): DD {
  const p = a * b;
  if (!Number.isFinite(p)) return dd(p, 0);
  const [ah, al] = split(a);
  const [bh, bl] = split(b);
  return dd(p, ah * bh - p + ah * bl + al * bh + al * bl);
}

export function add(x: DD, y: DD): DD {
  const s = twoSum(x.hi, y.hi);
  const t = twoSum(x.lo, y.lo);
  const u = quickTwoSum(s.hi, s.lo + t.hi);
  return quickTwoSum(u.hi, u.lo + t.lo);
}

export function neg(x: DD): DD {
  return { hi: -x.hi, lo: -x.lo };
}

export function sub(x: DD, y: DD): DD {
  return add(x, neg(y));
}

export function mul(x: DD, y: DD): DD {
  const p = twoProd(x.hi, y.hi);
  return quickTwoSum(p.hi, p.lo + (x.hi * y.lo + x.lo * y.hi));
}

/** x*b for a float64 b. */
export function scale(x: DD, b: number): DD {
  const p = twoProd(x.hi, b);
  return quickTwoSum(p.hi, p.lo + x.lo * b);
}

export function div(x: DD, y: DD): DD {
  const q1 = x.hi / y.hi;
  if (!Number.isFinite(q1) || y.hi === 0) return dd(q1, 0);
  let r = sub(x, scale(y, q1));
  const q2 = r.hi / y.hi;
  r = sub(r, scale(y, q2));
  const q3 = r.hi / y.hi;
  return add(quickTwoSum(q1, q2), fromNumber(q3));
}

export function sqrt(x: DD): DD {
  if (x.hi <= 0 || !Number.isFinite(x.hi)) return fromNumber(Math.sqrt(x.hi));
  // one Newton step from the float64 root: s + (x - s^2)/(2s)
  const s = Math.sqrt(x.hi);
  const r = sub(x, twoProd(s, s));
  return quickTwoSum(s, r.hi / (2 * s));
}

/** The float64 nearest to x (hi, since |lo| <= ulp(hi)/2). */
export function toNumber(x: DD): number {
  return x.hi;
}
