// How the webgpu kernels split work and lay out statistics (pure arithmetic, no GPU): load width, reduction kinds, chunks, float-float pairs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normView } from '../src/core/layout.ts';
import { packStats, unpackStats } from '../src/kernels/webgpu/engine.ts';
import { affineReduction, floatFloat, groupReduction, lanesOf, reduceWorkgroups } from '../src/kernels/webgpu/dispatch.ts';

describe('webgpu dispatch plan', () => {
  it('reads NCHW BatchNorm as vec4 rows in chunks of 4,096 loads (shape A: the H100-measured plan)', () => {
    const view = normView({ kind: 'batch' }, [32, 64, 56, 56], 'channels-first');
    assert.equal(lanesOf(view), 4);
    const r = groupReduction(view, 4);
    assert.deepEqual([r.columns, r.count, r.L, r.stride, r.chunks], [false, (32 * 56 * 56) / 4, (56 * 56) / 4, (64 * 56 * 56) / 4, 7]);
    assert.equal(reduceWorkgroups(r), 64 * 7);
  });

  it('reduces strided values in columns: channels-last BatchNorm, LayerNorm affine gradients', () => {
    const nhwc = normView({ kind: 'batch' }, [32, 56, 56, 64], 'channels-last');
    assert.equal(lanesOf(nhwc), 1);
    const r = groupReduction(nhwc, 1);
    assert.deepEqual([r.columns, r.stride, r.chunks], [true, 64, 1024]);
    const ln = normView({ kind: 'layer', normalizedRank: 1 }, [8192, 1024], 'channels-first');
    assert.equal(groupReduction(ln, 1).columns, false);
    assert.equal(affineReduction(ln, 1).columns, true);
  });

  it('splits few moderate targets further so a large GPU has work (BatchNorm1d on 256x1024), but not below a load per invocation', () => {
    const b = groupReduction(normView({ kind: 'batch' }, [256, 1024], 'channels-first'), 1);
    assert.ok(reduceWorkgroups(b) >= 256, `${reduceWorkgroups(b)} workgroups`);
    const tiny = groupReduction(normView({ kind: 'batch' }, [8, 16, 8, 8], 'channels-first'), 4);
    assert.equal(tiny.chunks, 1);
  });
});

describe('webgpu statistics layout (float-float pairs, no GPU)', () => {
  it('round-trips mean and rstd from 1e-30 to 1e30 to about 2^-47, rstd as (hi, lo)*2^-k with hi in [1, 2)', () => {
    const values = [1e-30, 3.7e-12, 0.1, 1, 2 / 3, 1e4 + 1e-4, 6.02e23, 1e30];
    const mean = Float64Array.from(values, (v, i) => (i % 2 === 0 ? v : -v));
    const rstd = Float64Array.from(values).reverse();
    const packed = packStats(mean, rstd);
    for (let q = 0; q < values.length; q++) {
      assert.ok(packed[8 * q + 2] >= 1 && packed[8 * q + 2] < 2, `rstd hi ${packed[8 * q + 2]}`);
    }
    const back = unpackStats(packed);
    for (let q = 0; q < values.length; q++) {
      assert.ok(Math.abs(back.mean[q] - mean[q]) <= 2 ** -47 * Math.abs(mean[q]), `mean ${mean[q]}`);
      assert.ok(Math.abs(back.rstd[q] - rstd[q]) <= 2 ** -47 * rstd[q], `rstd ${rstd[q]}`);
    }
    const [hi, lo] = floatFloat(0.1);
    assert.equal(hi, Math.fround(0.1));
    assert.ok(Math.abs(hi + lo - 0.1) < 2 ** -50 * 0.1);
  });
});
