// Small calls (issue 17 item 3): what a layer and the wasm backend now reuse from call to call — the
// statistics pair, the Saved objects, the plan per shape, the staging scratch, resident tensors' registry
// entries made late — keeps every guarantee: a failed call leaves the cached forward, version checks follow
// the latest input, a new shape gets its own plan, no two calls share copies, dropped tensors come back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { NormkitError } from '../src/errors.ts';
import { Arena, SCRATCH_BYTES } from '../src/kernels/wasm/arena.ts';
import { wasmAvailable, wasmMemory } from '../src/kernels/wasm/backend.ts';
import { Staging } from '../src/kernels/wasm/staging.ts';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/batchnorm.ts';
import type { Tensor } from '../src/tensor.ts';
import { tensor } from '../src/tensor.ts';
import { Random } from './helpers.ts';

function isCode(code: string): (e: unknown) => boolean {
  return (e) => e instanceof NormkitError && e.code === code;
}

const shape = [4, 3, 2, 2];
const values = (random: Random, n = 48): ArrayLike<number> => random.normals(n, 1, 2);

describe('small calls: arrays a layer reuses between calls', () => {
  it('a forward that fails after the kernels ran leaves the cached forward and the state as they were, call after call', () => {
    const random = new Random(21);
    const inputs = [0, 1, 2, 3].map(() => tensor(values(random), shape));
    const dy = tensor(random.normals(48), shape);
    const bad = tensor([Number.NaN, ...Array.from(values(random, 47))], shape);
    const bn = new BatchNorm2d(3, { nonFinite: 'throw' });
    for (let k = 0; k < inputs.length; k++) {
      bn.forward(inputs[k]);
      // the statistics are computed (into the pair the cache does not hold) before the policy refuses them
      assert.throws(() => bn.forward(bad), isCode('non-finite'));
      const fresh = new BatchNorm2d(3, { nonFinite: 'throw' });
      for (let j = 0; j <= k; j++) fresh.forward(inputs[j]);
      assert.deepEqual(Array.from(bn.backward(dy).data), Array.from(fresh.backward(dy).data));
      assert.deepEqual(Array.from(bn.runningVar ?? []), Array.from(fresh.runningVar ?? []));
      assert.equal(bn.numBatchesTracked, k + 1);
    }
  });

  it("version checks follow the layer's latest input: a write into the one before no longer counts", () => {
    const random = new Random(22);
    const writer = new BatchNorm2d(3);
    const z = tensor(values(random), shape);
    const dy = (): Tensor => ({ data: Float32Array.from(random.normals(48)), shape });
    // resident inputs share one buffer; a plain one has its own: both ways the Saved object is reused
    for (const plain of [false, true]) {
      const bn = new BatchNorm2d(3);
      const first: Tensor = plain ? { data: Float32Array.from(values(random)), shape } : tensor(values(random), shape);
      const second = tensor(values(random), shape);
      bn.forward(first);
      bn.forward(second);
      writer.forward(z, { out: first });
      assert.equal(bn.backward(dy()).data.length, 48);
      writer.forward(z, { out: second });
      assert.throws(() => bn.backward(dy()), isCode('modified'));
      bn.forward(first);
      writer.forward(z, { out: second });
      assert.equal(bn.backward(dy()).data.length, 48);
      writer.forward(z, { out: first });
      assert.throws(() => bn.backward(dy()), /the input of size \[4, 3, 2, 2\] saved by forward is at version 1/);
    }
  });

  it('the plan kept for the last shape gives way to a new shape, and a bad shape after good ones is still refused', () => {
    const random = new Random(23);
    const bn = new BatchNorm1d(4);
    const run = (dims: number[]): number[] => {
      const x: Tensor = { data: Float32Array.from(values(random, dims.reduce((p, d) => p * d, 1))), shape: dims };
      const y = Array.from(bn.forward(x).data);
      assert.deepEqual(y, Array.from(new BatchNorm1d(4).forward(x).data));
      return y;
    };
    run([8, 4]);
    run([8, 4, 3]);
    run([8, 4]);
    assert.throws(() => bn.forward({ data: new Float32Array(40), shape: [8, 5] }), isCode('channels'));
    assert.throws(() => bn.forward({ data: new Float32Array(4), shape: [1, 4] }), isCode('single-value'));
    run([2, 4, 5]);
  });
});

describe('small calls: the staging scratch', () => {
  const memory = (): Arena => new Arena(new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true }));

  it('small copies go to the scratch with no block; a second staging at once gets its own block', () => {
    const arena = memory();
    const used = (): number => arena.used;
    const weight = Float32Array.from([1, 2, 3]);
    const bias = Float32Array.from([4, 5, 6]);
    const wanted = [
      { array: weight, length: 3, what: 'weight' },
      { array: bias, length: 3, what: 'bias' },
    ];
    const first = new Staging(arena, 'float32', wanted);
    const [w1, b1] = first.stage();
    assert.equal(used(), 0);
    const second = new Staging(arena, 'float32', wanted);
    const [w2, b2] = second.stage();
    assert.ok(used() > 0);
    const view = new Float32Array(arena.buffer);
    for (const [pw, pb] of [[w1, b1], [w2, b2]]) {
      assert.deepEqual(Array.from(view.subarray(pw / 4, pw / 4 + 3)), [1, 2, 3]);
      assert.deepEqual(Array.from(view.subarray(pb / 4, pb / 4 + 3)), [4, 5, 6]);
    }
    // no byte of one call's copies is another's
    const starts = [w1, b1, w2, b2].sort((a, b) => a - b);
    for (let i = 1; i < starts.length; i++) assert.ok(starts[i] >= starts[i - 1] + 12);
    second.free();
    first.free();
    assert.equal(arena.used, 0);
  });

  it('an output staged in the scratch is copied back; copies over the scratch size take a block', () => {
    const arena = memory();
    const out = new Float32Array(4);
    const small = new Staging(arena, 'float32', [{ array: out, length: 4, what: 'y', role: 'output' }]);
    const [py] = small.stage();
    new Float32Array(arena.buffer, py, 4).set([7, 8, 9, 10]);
    small.finish();
    small.free();
    assert.deepEqual(Array.from(out), [7, 8, 9, 10]);
    const large = new Float32Array(SCRATCH_BYTES / 4 + 1).fill(3);
    const big = new Staging(arena, 'float32', [{ array: large, length: large.length, what: 'x' }]);
    const [px] = big.stage();
    assert.ok(arena.used >= large.byteLength);
    assert.equal(new Float32Array(arena.buffer, px, large.length)[large.length - 1], 3);
    big.free();
    assert.equal(arena.used, 0);
  });
});

describe('small calls: resident tensors registered late', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  /** Makes `count` resident tensors, disposes every third (some while others wait to be registered), drops the rest. */
  function churn(count: number): void {
    const made = [];
    for (let i = 0; i < count; i++) {
      made.push(tensor(new Float32Array(256).fill(i), [256]));
      if (i % 3 === 1) made[i - 1].dispose();
    }
    made[count - 1].dispose();
  }

  /** Collects until the bytes in blocks stop changing (what earlier tests dropped comes back too). */
  async function settle(): Promise<number> {
    let last = -1;
    for (let i = 0, same = 0; i < 200 && same < 5; i++) {
      await tick();
      gc();
      await tick();
      const used = wasmMemory().used;
      same = used === last ? same + 1 : 0;
      last = used;
    }
    return last;
  }

  for (const count of [10, 200]) {
    // (10 and 200: fewer and more than one registration batch; nothing here tells the batches apart)
    it(`${count} tensors dropped without dispose() come back once collected`, { skip: !wasmAvailable() }, async () => {
      const before = await settle();
      churn(count);
      assert.ok(wasmMemory().used > before);
      assert.equal(await settle(), before);
    });
  }
});
