// The float-float arithmetic of the webgpu kernels, run on the GPU against float64: TwoSum and TwoProduct exact
// to the bit on inputs where a reordering or fusing compiler gives a different answer, add, mul and rsqrt to ~2^-45.
// Mutants (the error terms folded to 0, as reassociation or contraction would) show the checks fail where a compiler does that.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { BufferUsage, MapMode } from '../src/kernels/webgpu/constants.ts';
import { floatFloatWgsl } from '../src/kernels/webgpu/float-float.ts';
import { floatFloat } from '../src/kernels/webgpu/dispatch.ts';
import { createNodeWebGpu } from '../src/node/dawn.ts';
import { Random } from './helpers.ts';
import { gpuTests } from './webgpu-setup.ts';

const ops = ['twoSum', 'twoProd', 'add', 'mul', 'rsqrt'] as const;
type Op = (typeof ops)[number];

/** Each item: 4 cases in the lanes of (a hi, a lo, b hi, b lo); out: (hi, lo). op < 5: scalar S per lane; op >= 5: the vec4 Q version. */
function testModule(library: string): string {
  return /* wgsl */ `
struct Params { zero: u32, op: u32, items: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inputs: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> results: array<vec4<f32>>;
${library}
fn scalarOp(ahi: f32, alo: f32, bhi: f32, blo: f32) -> FFS {
  switch p.op % 5u {
    case 0u: { return twoSumS(ahi, bhi); }
    case 1u: { return twoProdS(ahi, bhi); }
    case 2u: { return addS(FFS(ahi, alo), FFS(bhi, blo)); }
    case 3u: { return mulS(FFS(ahi, alo), FFS(bhi, blo)); }
    default: { return rsqrtS(FFS(ahi, alo)); }
  }
}
fn vectorOp(a: FFQ, b: FFQ) -> FFQ {
  switch p.op % 5u {
    case 0u: { return twoSumQ(a.hi, b.hi); }
    case 1u: { return twoProdQ(a.hi, b.hi); }
    case 2u: { return addQ(a, b); }
    default: { return mulQ(a, b); }
  }
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if i >= p.items { return; }
  let a = FFQ(inputs[4u * i], inputs[4u * i + 1u]);
  let b = FFQ(inputs[4u * i + 2u], inputs[4u * i + 3u]);
  if p.op >= 5u {
    let r = vectorOp(a, b);
    results[2u * i] = r.hi;
    results[2u * i + 1u] = r.lo;
    return;
  }
  var hi = vec4(0.0);
  var lo = vec4(0.0);
  for (var l = 0u; l < 4u; l++) {
    let r = scalarOp(a.hi[l], a.lo[l], b.hi[l], b.lo[l]);
    hi[l] = r.hi;
    lo[l] = r.lo;
  }
  results[2u * i] = hi;
  results[2u * i + 1u] = lo;
}`;
}

/**
 * Adversarial cases: sums of values 2^24 and more apart and of opposite signs (TwoSum's error is the whole
 * smaller value), products of full 24-bit significands (TwoProduct's low half is non-zero, and Veltkamp's
 * split must be exact), values near 1 +- 2^-23, and random exponents.
 */
function cases(random: Random): { a: [number, number]; b: [number, number] }[] {
  const f = Math.fround;
  const full = () => f((1 + random.int(0, 2 ** 23 - 1) / 2 ** 23) * (random.int(0, 1) === 0 ? 1 : -1));
  const out: { a: [number, number]; b: [number, number] }[] = [];
  const fixed: [number, number][] = [
    [2 ** 24, 1],
    [2 ** 24, -1],
    [1, 2 ** -24],
    [1, 3 * 2 ** -25],
    [1 + 2 ** -23, 1 + 2 ** -23],
    [1 - 2 ** -24, 1 + 2 ** -23],
    [f(2 ** 24 - 1), f(2 ** 24 - 1)],
    [f(4097), f(1 / 3)],
    [f(1e8), f(-1e8 + 3)],
    [f(0.1), f(0.2)],
  ];
  for (const [a, b] of fixed) out.push({ a: floatFloat(a), b: floatFloat(b) });
  while (out.length < 1024) {
    const exponent = random.int(-20, 20);
    const a = full() * 2 ** exponent;
    // exponents at most 29 apart, so a + b is exact in float64
    const b = full() * 2 ** (exponent - (random.int(0, 3) === 0 ? random.int(24, 28) : random.int(-8, 8)));
    // float-float operands: a low part at about 2^-24 of the high part
    out.push({ a: [f(a), f(full() * Math.abs(a) * 2 ** -25)], b: [f(b), f(full() * Math.abs(b) * 2 ** -25)] });
  }
  return out;
}

/** Exact sum of float64 terms whose exponents lie within 50 bits (here: f32 pairs and their products), by error-free summation. */
function exact(values: number[]): { hi: number; lo: number } {
  let hi = 0;
  let lo = 0;
  for (const v of values) {
    const s = hi + v;
    const bv = s - hi;
    lo += hi - (s - bv) + (v - bv);
    hi = s;
  }
  return { hi, lo };
}

interface Outcome {
  readonly failures: string[];
}

/** Checks each result: TwoSum and TwoProduct bit-exact, the rest within 2^-44 (relative) of float64. */
function check(op: Op, input: { a: [number, number]; b: [number, number] }[], hi: Float32Array, lo: Float32Array): Outcome {
  const failures: string[] = [];
  input.forEach(({ a, b }, i) => {
    let ok: boolean;
    if (op === 'twoSum' || op === 'twoProd') {
      const truth = op === 'twoSum' ? a[0] + b[0] : a[0] * b[0]; // exact in float64: f32 operands within 2^28 of each other, or a 48-bit product
      ok = hi[i] === Math.fround(truth) && hi[i] + lo[i] === truth && lo[i] === truth - hi[i];
    } else {
      const truth =
        op === 'add'
          ? exact([a[0], a[1], b[0], b[1]])
          : op === 'mul'
            ? exact([a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]])
            : { hi: 1 / Math.sqrt(Math.abs(a[0]) + Math.sign(a[0]) * a[1]), lo: 0 };
      const got = hi[i] + lo[i];
      const want = truth.hi + truth.lo;
      ok = Math.abs(got - truth.hi - truth.lo) <= 2 ** -44 * Math.abs(want) + 1e-300 || (op === 'add' && Math.abs(got - want) <= 2 ** -44 * (Math.abs(a[0]) + Math.abs(b[0])));
    }
    if (!ok) failures.push(`${op} a=${a.join('+')} b=${b.join('+')}: got ${hi[i]} + ${lo[i]}`);
  });
  return { failures };
}

describe('webgpu float-float arithmetic (against float64)', () => {
  const input = cases(new Random(23));
  const withGpu = gpuTests(createNodeWebGpu);

  /** Runs `op` (scalar, or the vec4 version) over the cases with the library `library` on `d`. */
  async function run(d: GPUDevice, library: string, op: Op, vector: boolean): Promise<{ hi: Float32Array; lo: Float32Array }> {
    const items = input.length / 4;
    // rsqrt takes |a|
    const packed = new Float32Array(16 * items);
    input.forEach(({ a, b }, c) => {
      const [item, lane] = [Math.floor(c / 4), c % 4];
      const values = [op === 'rsqrt' ? Math.abs(a[0]) : a[0], op === 'rsqrt' ? Math.sign(a[0]) * a[1] : a[1], b[0], b[1]];
      values.forEach((v, k) => (packed[16 * item + 4 * k + lane] = v));
    });
    const module = d.createShaderModule({ code: testModule(library) });
    const pipeline = d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const params = d.createBuffer({ size: 16, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
    const source = d.createBuffer({ size: packed.byteLength, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST });
    const target = d.createBuffer({ size: 32 * items, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC });
    const staging = d.createBuffer({ size: 32 * items, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    d.queue.writeBuffer(params, 0, new Uint32Array([0, ops.indexOf(op) + (vector ? 5 : 0), items, 0]));
    d.queue.writeBuffer(source, 0, packed);
    const group = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [params, source, target].map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const encoder = d.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(Math.ceil(items / 64));
    pass.end();
    encoder.copyBufferToBuffer(target, 0, staging, 0, 32 * items);
    d.queue.submit([encoder.finish()]);
    await staging.mapAsync(MapMode.READ);
    const raw = new Float32Array(staging.getMappedRange().slice(0));
    for (const b of [params, source, target, staging]) b.destroy();
    const hi = new Float32Array(input.length);
    const lo = new Float32Array(input.length);
    for (let c = 0; c < input.length; c++) {
      const [item, lane] = [Math.floor(c / 4), c % 4];
      hi[c] = raw[8 * item + lane];
      lo[c] = raw[8 * item + 4 + lane];
    }
    return { hi, lo };
  }

  withGpu('TwoSum and TwoProduct are exact to the bit, add/mul/rsqrt within 2^-44, in f32 and vec4<f32> alike', async ({ device }) => {
    const library = floatFloatWgsl(4);
    for (const op of ops) {
      const scalar = await run(device, library, op, false);
      const { failures } = check(op, op === 'rsqrt' ? input.map(({ a, b }) => ({ a: [Math.abs(a[0]), Math.sign(a[0]) * a[1]], b })) : input, scalar.hi, scalar.lo);
      assert.deepEqual(failures.slice(0, 3), [], `${op}: ${failures.length} of ${input.length} wrong`);
      if (op === 'rsqrt') continue;
      const vector = await run(device, library, op, true);
      assert.deepEqual([vector.hi, vector.lo], [scalar.hi, scalar.lo], `${op}: vec4 differs from f32`);
    }
  });

  withGpu('fails where a compiler folds the error terms away (mutants of the library: what reassociation or contraction yields)', async ({ device }) => {
    const library = floatFloatWgsl(4);
    // reassociation: TwoSum's (a - av) + (b - bv) is (a + b) - s, which is 0
    const reassociated = library.replaceAll(/return FF(S|Q)\(s, keep\1\(keep\1\(a - av\) \+ keep\1\(b - bv\)\)\);/g, 'return FF$1(s, keep$1(a + b) - s);');
    // contraction of x.hi*y.hi - a*b into one fused operation (a*b unrounded): the partial products then sum to a*b and the error to 0
    const contracted = library.replaceAll(/return FF(S|Q)\(prod, keep\1\(e3 \+ keep\1\(x\.lo \* y\.lo\)\)\);/g, 'return FF$1(prod, keep$1(a * b) - prod);');
    assert.notEqual(reassociated, library);
    assert.notEqual(contracted, library);
    const sum = await run(device, reassociated, 'twoSum', false);
    assert.ok(check('twoSum', input, sum.hi, sum.lo).failures.length > input.length / 2, 'reassociated TwoSum passed');
    const product = await run(device, contracted, 'twoProd', false);
    assert.ok(check('twoProd', input, product.hi, product.lo).failures.length > input.length / 2, 'contracted TwoProduct passed');
  });
});
