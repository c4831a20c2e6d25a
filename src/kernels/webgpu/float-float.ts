/**
 * Float-float ("double-single") arithmetic in WGSL: a value is an unevaluated sum hi + lo of two f32,
 * about 48 significant bits, built from error-free transformations without fma (WGSL's fma may be
 * a multiply and an add, rounded twice).
 *
 * Method: TwoSum (Knuth), Fast2Sum and TwoProduct by Veltkamp's split (Dekker); addition and
 * multiplication as in Hida, Li and Bailey's QD library; 1/sqrt by one Newton step in float-float.
 * References: T. J. Dekker, "A floating-point technique for extending the available precision",
 * Numer. Math. 18 (1971); D. E. Knuth, TAOCP vol. 2, 4.2.2; Y. Hida, X. S. Li, D. H. Bailey,
 * "Library for double-double and quad-double arithmetic" (2007).
 *
 * The compiler must not see through them: WGSL lets an implementation reassociate and fuse
 * (spec, "Reassociation and fusion"); Dawn compiles for Metal in relaxed math mode unless a shader
 * module asks for strict math (Dawn-only, not in WebGPU's API), where `(a + b) - a` may become `b`
 * and TwoSum's error term 0; Tint marks no SPIR-V operation NoContraction, so Vulkan drivers may
 * contract a*b + c. Fusing itself is harmless here (every partial product of the split is exact, so
 * a fused multiply-add rounds as the two operations do); folding `x.hi*y.hi - a*b` with `a*b`
 * unrounded, or reassociating a sum, is not. So every intermediate goes through `keep`, an xor of its
 * bits with a run-time zero (`p.zero`, a uniform the host sets to 0): an integer operation that no
 * floating-point rewrite crosses, so each operation is rounded where it is written.
 * test/webgpu-float-float.test.ts checks the results bit for bit against float64, and that the check
 * fails for the library with its error terms folded away.
 *
 * Every function exists per type: suffix S for f32, Q for vec4<f32> (lane by lane).
 */

/** The functions for one WGSL type: T (f32 or vec4<f32>), U its u32 counterpart, I its i32 counterpart, N the name suffix. */
function typed(N: 'S' | 'Q', T: string, U: string, I: string): string {
  return /* wgsl */ `
struct FF${N} { hi: ${T}, lo: ${T} }

// v, opaque to the compiler: no rewrite of floating-point expressions crosses an integer xor with a run-time value
fn keep${N}(v: ${T}) -> ${T} { return bitcast<${T}>(bitcast<${U}>(v) ^ ${U}(p.zero)); }

// TwoSum: hi + lo = a + b exactly
fn twoSum${N}(a: ${T}, b: ${T}) -> FF${N} {
  let s = keep${N}(a + b);
  let bv = keep${N}(s - a);
  let av = keep${N}(s - bv);
  return FF${N}(s, keep${N}(keep${N}(a - av) + keep${N}(b - bv)));
}

// Fast2Sum: hi + lo = a + b exactly where |a| >= |b| or a = 0
fn fastTwoSum${N}(a: ${T}, b: ${T}) -> FF${N} {
  let s = keep${N}(a + b);
  return FF${N}(s, keep${N}(b - keep${N}(s - a)));
}

// Veltkamp's split: a = hi + lo, each of at most 12 significant bits, so their products are exact (|a| < 2^115)
fn split${N}(a: ${T}) -> FF${N} {
  let t = keep${N}(4097.0 * a);
  let hi = keep${N}(t - keep${N}(t - a));
  return FF${N}(hi, keep${N}(a - hi));
}

// Dekker's TwoProduct: hi + lo = a*b exactly (no fma; barring underflow)
fn twoProd${N}(a: ${T}, b: ${T}) -> FF${N} {
  let prod = keep${N}(a * b);
  let x = split${N}(a);
  let y = split${N}(b);
  let e1 = keep${N}(keep${N}(x.hi * y.hi) - prod);
  let e2 = keep${N}(e1 + keep${N}(x.hi * y.lo));
  let e3 = keep${N}(e2 + keep${N}(x.lo * y.hi));
  return FF${N}(prod, keep${N}(e3 + keep${N}(x.lo * y.lo)));
}

// a + b, relative error about 2^-47 (QD's accurate addition)
fn add${N}(a: FF${N}, b: FF${N}) -> FF${N} {
  let s = twoSum${N}(a.hi, b.hi);
  let t = twoSum${N}(a.lo, b.lo);
  let u = fastTwoSum${N}(s.hi, keep${N}(s.lo + t.hi));
  return fastTwoSum${N}(u.hi, keep${N}(u.lo + t.lo));
}

// a + b for a float-float and an f32
fn addF${N}(a: FF${N}, b: ${T}) -> FF${N} {
  let s = twoSum${N}(a.hi, b);
  return fastTwoSum${N}(s.hi, keep${N}(s.lo + a.lo));
}

fn neg${N}(a: FF${N}) -> FF${N} { return FF${N}(-a.hi, -a.lo); }

// a*b, relative error about 2^-46
fn mul${N}(a: FF${N}, b: FF${N}) -> FF${N} {
  let prod = twoProd${N}(a.hi, b.hi);
  let cross = keep${N}(keep${N}(a.hi * b.lo) + keep${N}(a.lo * b.hi));
  return fastTwoSum${N}(prod.hi, keep${N}(prod.lo + cross));
}

// a*b for a float-float and an f32
fn mulF${N}(a: FF${N}, b: ${T}) -> FF${N} {
  let prod = twoProd${N}(a.hi, b);
  return fastTwoSum${N}(prod.hi, keep${N}(prod.lo + keep${N}(a.lo * b)));
}

// acc + v, compensated: the rounding error of acc.hi's running sum is summed in acc.lo (renormalize before use)
fn accumulate${N}(acc: FF${N}, v: FF${N}) -> FF${N} {
  let s = twoSum${N}(acc.hi, v.hi);
  return FF${N}(s.hi, keep${N}(acc.lo + keep${N}(s.lo + v.lo)));
}

fn renormalize${N}(a: FF${N}) -> FF${N} { return twoSum${N}(a.hi, a.lo); }

// v*2^e, exact barring overflow and underflow, for |e| up to 250 (WGSL's ldexp may give 0 for e < -126, anything for e > 128)
fn pow2Scale${N}(v: ${T}, e: i32) -> ${T} {
  let first = clamp(e, -250, 250) / 2;
  return ldexp(ldexp(v, ${I}(first)), ${I}(clamp(e, -250, 250) - first));
}

fn scale${N}(a: FF${N}, e: i32) -> FF${N} { return FF${N}(pow2Scale${N}(a.hi, e), pow2Scale${N}(a.lo, e)); }

fn value${N}(a: FF${N}) -> ${T} { return a.hi + a.lo; }
`;
}

/** Scalar only: 1/sqrt. */
const scalarOnly = /* wgsl */ `
// 1/sqrt(a) for a > 0: the f32 estimate y, then y*(1 + r/2 + 3r^2/8) with r = 1 - a*y^2 in float-float (Newton, second order)
fn rsqrtS(a: FFS) -> FFS {
  let y = inverseSqrt(a.hi);
  let r = addS(FFS(1.0, 0.0), negS(mulS(a, twoProdS(y, y))));
  let correction = mulS(FFS(y, 0.0), mulFS(r, keepS(0.5 + keepS(0.375 * r.hi))));
  return addFS(correction, y);
}
`;

/**
 * The float-float library for a module whose loads are `lanes` wide (S always, Q too for 4).
 * The module must declare `p` (a uniform) with a u32 field `zero` that the host sets to 0.
 */
export function floatFloatWgsl(lanes: 1 | 4): string {
  return typed('S', 'f32', 'u32', 'i32') + scalarOnly + (lanes === 4 ? typed('Q', 'vec4<f32>', 'vec4<u32>', 'vec4<i32>') : '');
}
