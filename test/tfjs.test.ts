// normkit/tfjs against stock TensorFlow.js 4.22 and normkit's float64 reference, on tfjs's cpu and wasm backends.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Tf } from '../src/bench/peers/tfjs.ts';
import { loadTf } from '../src/bench/peers/tfjs.ts';
import type { Layout } from '../src/core/layout.ts';
import { normView } from '../src/core/layout.ts';
import { normalizedError } from '../src/conformance/compare.ts';
import { Random } from '../src/random.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { numel } from '../src/tensor.ts';
import type { NormkitTfjs } from '../src/tfjs/index.ts';
import { useNormkit } from '../src/tfjs/index.ts';

type Tensor = import('@tensorflow/tfjs').Tensor;

// both backends registered; each describe sets its own in before()
const tf: Tf = await loadTf('wasm');
const EPS = 1e-3;
/** float32 results against the float64 reference */
const TIGHT = 2e-6;

const random = new Random(7);
const values = (n: number, mean = 0, std = 1) => Float32Array.from(random.normals(n, mean, std));
const data = (t: Tensor): Float32Array => Float32Array.from(t.dataSync());

/** The channel axis of a layout, and the [1, C, 1, 1]-style parameter shape tfjs broadcasts with. */
function paramShape(shape: readonly number[], layout: Layout): number[] {
  const c = layout === 'channels-first' ? shape[1] : shape[shape.length - 1];
  return layout === 'channels-first' ? shape.map((d, i) => (i === 1 ? c : 1)) : [c];
}

interface Case {
  readonly shape: number[];
  readonly layout: Layout;
  readonly x: Float32Array;
  readonly dy: Float32Array;
  readonly gamma: Float32Array;
  readonly beta: Float32Array;
  readonly mean: Float32Array;
  readonly variance: Float32Array;
}

function makeCase(shape: number[], layout: Layout): Case {
  const n = numel(shape);
  const c = layout === 'channels-first' ? shape[1] : shape[shape.length - 1];
  return {
    shape,
    layout,
    x: values(n, 0.5, 2),
    dy: values(n),
    gamma: values(c, 1, 0.3),
    beta: values(c, 0, 0.3),
    mean: values(c, 0.5, 0.5),
    variance: Float32Array.from(values(c, 4, 1), Math.abs),
  };
}

const layouts: readonly [Layout, number[]][] = [
  ['channels-last', [4, 5, 5, 3]],
  ['channels-first', [4, 3, 5, 5]],
];

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`normkit/tfjs on tfjs's ${backend} backend`, () => {
    let handle: NormkitTfjs;
    const notices: string[] = [];
    const install = async () => {
      handle = await useNormkit(tf, { onFallback: (m) => notices.push(m) });
    };
    /** Runs `fn` on stock tfjs (normkit restored), then installs normkit again. */
    const stock = async <T>(fn: () => T): Promise<T> => {
      handle.restore();
      try {
        return await Promise.resolve().then(fn);
      } finally {
        await install();
      }
    };
    before(async () => {
      await tf.setBackend(backend);
      await install();
    });
    after(() => {
      handle.restore();
    });

    it('serves FusedBatchNorm on the cpu and wasm backends, and leaves tfjs\'s layer names alone', async () => {
      assert.deepEqual(handle.servedBackends(), ['cpu', 'wasm']);
      assert.equal(handle.kernels, 'wasm');
      const number = (name: string) => Number(/(\d+)$/.exec(name)?.[1]);
      const first = number(tf.layers.batchNormalization().name);
      handle.restore();
      await install();
      assert.equal(number(tf.layers.batchNormalization().name), first + 1);
    });

    for (const [layout, shape] of layouts) {
      it(`tf.batchNorm (inference), ${layout}: matches the float64 reference${layout === 'channels-first' ? ', where stock tfjs is wrong (tfjs #1106)' : ' and stock tfjs'}`, async () => {
        const k = makeCase(shape, layout);
        const p = paramShape(shape, layout);
        const run = () => tf.tidy(() => data(tf.batchNorm(tf.tensor(k.x, shape), tf.tensor(k.mean, p), tf.tensor(k.variance, p), tf.tensor(k.beta, p), tf.tensor(k.gamma, p), EPS)));
        const truth = referenceNorm({ x: k.x, view: normView({ kind: 'batch' }, shape, layout), gamma: k.gamma, beta: k.beta, eps: EPS, stats: { mu: k.mean, var: k.variance } }).y;
        const ours = run();
        const theirs = await stock(run);
        assert.ok(normalizedError(ours, truth) < TIGHT, `normkit error ${normalizedError(ours, truth)}`);
        if (layout === 'channels-last') {
          assert.ok(normalizedError(theirs, truth) < 1e-5, `stock error ${normalizedError(theirs, truth)}`);
        } else {
          // stock tfjs reads [1, C, 1, 1] parameters as if C were the last axis: a wrong answer, not rounding
          assert.ok(normalizedError(theirs, truth) > 0.05, `stock tfjs error ${normalizedError(theirs, truth)}: the axis-1 bug is gone?`);
        }
      });
    }

    it('tf.batchNorm with parameters of x\'s whole shape, and tf.layers.layerNormalization, which passes them so', async () => {
      const shape = [6, 8];
      const n = 48;
      const [x, mean, variance, scale, offset] = [values(n), values(n), Float32Array.from(values(n, 2), Math.abs), values(n, 1), values(n)];
      const run = () => tf.tidy(() => data(tf.batchNorm(tf.tensor(x, shape), tf.tensor(mean, shape), tf.tensor(variance, shape), tf.tensor(offset, shape), tf.tensor(scale, shape), EPS)));
      const truth = x.map((v, i) => ((v - mean[i]) / Math.sqrt(variance[i] + EPS)) * scale[i] + offset[i]);
      assert.ok(normalizedError(run(), truth) < TIGHT);
      assert.ok(normalizedError(await stock(run), truth) < 1e-5);
      // tf.layers.layerNormalization passes exactly such parameters
      const layer = tf.layers.layerNormalization({ epsilon: EPS });
      const normalized = data(layer.apply(tf.tensor(x, shape)) as Tensor);
      const rows = referenceNorm({ x, view: normView({ kind: 'layer', normalizedRank: 1 }, shape, 'channels-first'), eps: EPS }).y;
      assert.ok(normalizedError(normalized, rows) < 1e-5, `layerNormalization error ${normalizedError(normalized, rows)}`);
      assert.equal(notices.filter((m) => m.includes('FusedBatchNorm')).length, 0, notices.join('\n'));
    });

    it('parameters normkit does not cover go to tfjs\'s kernel, said once', () => {
      // [C, 1] against x [N, C, L] varies along axis 1 but broadcasts over the last: covered;
      // [2, 1, 4] varies along two axes with a broadcast one between: not covered
      const [xValues, pValues] = [values(2 * 3 * 4), values(8, 1, 0.1).map(Math.abs)];
      const x = tf.tensor(xValues, [2, 3, 4]);
      const p = tf.tensor(pValues, [2, 1, 4]);
      const before = notices.length;
      const a = data(tf.batchNorm(x, p, p, p, p, EPS));
      const b = data(tf.batchNorm(x, p, p, p, p, EPS));
      // tfjs's own kernel ran: it steps through each parameter cyclically (entry i % 8), not right-aligned
      // (tfjs #1106; the broadcast answer is ~0.6 away here)
      const truth = xValues.map((v, i) => {
        const q = pValues[i % pValues.length];
        return ((v - q) / Math.sqrt(q + EPS)) * q + q;
      });
      assert.ok(normalizedError(a, truth) < 1e-5, `first call: error ${normalizedError(a, truth)} against tfjs's kernel`);
      assert.ok(normalizedError(b, truth) < 1e-5, `repeat: error ${normalizedError(b, truth)} against tfjs's kernel`);
      const said = notices.slice(before);
      assert.equal(said.length, 1, said.join('\n'));
      assert.match(said[0], /normkit\/tfjs: FusedBatchNorm on \w+ with x \[1, 2, 3, 4\], mean \[2, 1, 4\].*not adjacent; running tfjs's own kernel/);
      tf.dispose([x, p]);
    });

    for (const [layout, shape] of layouts) {
      it(`batchNormTraining and its gradient (tf.grad), ${layout}: y, mean, biased variance, dx, dscale, doffset match the reference`, () => {
        const k = makeCase(shape, layout);
        const axis = layout === 'channels-first' ? 1 : -1;
        const ref = referenceNorm({ x: k.x, dy: k.dy, view: normView({ kind: 'batch' }, shape, layout), gamma: k.gamma, beta: k.beta, eps: EPS });
        const [x, dy, scale, offset] = [tf.tensor(k.x, shape), tf.tensor(k.dy, shape), tf.tensor1d(k.gamma), tf.tensor1d(k.beta)];
        const { y, mean, variance } = handle.batchNormTraining(x, { axis, scale, offset, epsilon: EPS });
        assert.ok(normalizedError(data(y), ref.y) < TIGHT);
        assert.ok(normalizedError(data(mean), ref.mu) < TIGHT);
        assert.ok(normalizedError(data(variance), ref.var) < TIGHT);
        const loss = (xx: Tensor, s: Tensor, o: Tensor) => tf.sum(tf.mul(handle.batchNormTraining(xx, { axis, scale: s, offset: o, epsilon: EPS }).y, dy));
        const [dx, dscale, doffset] = tf.grads(loss)([x, scale, offset]);
        assert.ok(normalizedError(data(dx), ref.dx) < 1e-5, `dx error ${normalizedError(data(dx), ref.dx)}`);
        assert.ok(normalizedError(data(dscale), ref.dgamma) < TIGHT);
        assert.ok(normalizedError(data(doffset), ref.dbeta) < TIGHT);
        tf.dispose([x, dy, scale, offset, y, mean, variance, dx, dscale, doffset]);
      });
    }

    it('batchNormTraining\'s gradient at mean 3e3, std 1 takes the forward\'s float64 statistics (float32 ones put dx off by 1e-5)', () => {
      const shape = [64, 8];
      const k = makeCase(shape, 'channels-last');
      const x = Float32Array.from(random.normals(k.x.length, 3e3, 1));
      const ref = referenceNorm({ x, dy: k.dy, view: normView({ kind: 'batch' }, shape, 'channels-last'), eps: EPS });
      const [xt, dy] = [tf.tensor(x, shape), tf.tensor(k.dy, shape)];
      const dx = data(tf.grad((xx: Tensor) => tf.sum(tf.mul(handle.batchNormTraining(xx, { epsilon: EPS }).y, dy)))(xt));
      assert.ok(normalizedError(dx, ref.dx) < TIGHT, `dx error ${normalizedError(dx, ref.dx)}`);
      tf.dispose([xt, dy]);
    });

    it('batchNormTraining rejects an axis outside x and parameters of the wrong shape', () => {
      const x = tf.ones([2, 3]);
      assert.throws(() => handle.batchNormTraining(x, { axis: 2 }), { name: 'NormkitError', code: 'option', message: /axis 2 is outside x's rank 2/ });
      assert.throws(() => handle.batchNormTraining(x, { scale: tf.ones([2]) }), { name: 'NormkitError', code: 'shape', message: /scale must have shape \[3\] \(x's axis 1\), got \[2\]/ });
      x.dispose();
    });

    it('batchNormTraining passes gradient through its mean and variance outputs too', () => {
      const shape = [6, 4];
      const k = makeCase(shape, 'channels-last');
      const x = tf.tensor(k.x, shape);
      // L = sum(mean*a) + sum(variance*b): dx = a/M + b*2(x - mean)/M
      const [a, b] = [values(4), values(4)];
      const dx = data(tf.grad((xx: Tensor) => {
        const { mean, variance } = handle.batchNormTraining(xx);
        return tf.add(tf.sum(tf.mul(mean, a)), tf.sum(tf.mul(variance, b)));
      })(x));
      const mu = [0, 1, 2, 3].map((c) => k.x.filter((_, i) => i % 4 === c).reduce((s, v) => s + v, 0) / 6);
      const truth = k.x.map((v, i) => a[i % 4] / 6 + (b[i % 4] * 2 * (v - mu[i % 4])) / 6);
      assert.ok(normalizedError(dx, truth) < 1e-5, `error ${normalizedError(dx, truth)}`);
      x.dispose();
    });

    for (const [layout, shape] of layouts) {
      it(`tf.layers.batchNormalization, ${layout}: training output, moving statistics (biased variance, momentum on the old value), optimizer.minimize and inference`, async () => {
        const k = makeCase(shape, layout);
        const axis = layout === 'channels-first' ? 1 : -1;
        const view = normView({ kind: 'batch' }, shape, layout);
        const momentum = 0.9;
        const lr = 0.1;
        /** Three training steps of L = sum(y*dy) with SGD, then an inference call. */
        const train = () => {
          const layer = tf.layers.batchNormalization({ axis, momentum, epsilon: EPS });
          layer.build(shape);
          layer.setWeights([tf.tensor1d(k.gamma), tf.tensor1d(k.beta), tf.tensor1d(k.mean), tf.tensor1d(k.variance)]);
          const [x, dy] = [tf.tensor(k.x, shape), tf.tensor(k.dy, shape)];
          const optimizer = tf.train.sgd(lr);
          const outputs: Float32Array[] = [];
          for (let step = 0; step < 3; step++) {
            optimizer.minimize(() => {
              const y = layer.apply(x, { training: true }) as Tensor;
              outputs.push(data(y));
              return tf.sum(tf.mul(y, dy));
            });
          }
          const inference = data(layer.apply(x) as Tensor);
          const weights = layer.getWeights().map(data);
          tf.dispose([x, dy]);
          return { outputs, inference, weights };
        };
        // the closed form in float64: each step normalizes with batch statistics, gamma -= lr*dgamma, beta -= lr*dbeta,
        // moving = moving - (moving - batch)*(1 - momentum) with the biased batch variance
        let [gamma, beta, movingMean, movingVar] = [k.gamma, k.beta, k.mean, k.variance].map((a) => Float64Array.from(a));
        const outputs: Float64Array[] = [];
        let unbiasedVar = Float64Array.from(k.variance);
        for (let step = 0; step < 3; step++) {
          const ref = referenceNorm({ x: k.x, dy: k.dy, view, gamma, beta, eps: EPS });
          outputs.push(ref.y);
          movingMean = movingMean.map((m, c) => m - (m - ref.mu[c]) * (1 - momentum));
          movingVar = movingVar.map((v, c) => v - (v - ref.var[c]) * (1 - momentum));
          unbiasedVar = unbiasedVar.map((v, c) => v - (v - (ref.var[c] * ref.m) / (ref.m - 1)) * (1 - momentum));
          gamma = gamma.map((g, c) => g - lr * ref.dgamma[c]);
          beta = beta.map((b, c) => b - lr * ref.dbeta[c]);
        }
        const inferenceTruth = referenceNorm({ x: k.x, view, gamma, beta, eps: EPS, stats: { mu: movingMean, var: movingVar } }).y;
        const ours = train();
        for (let step = 0; step < 3; step++) assert.ok(normalizedError(ours.outputs[step], outputs[step]) < TIGHT, `step ${step}`);
        const [g, b, mm, mv] = ours.weights;
        assert.ok(normalizedError(g, gamma) < TIGHT && normalizedError(b, beta) < TIGHT, 'gamma, beta after SGD');
        assert.ok(normalizedError(mm, movingMean) < TIGHT, 'moving mean');
        assert.ok(normalizedError(mv, movingVar) < TIGHT, 'moving variance follows the biased batch variance');
        assert.ok(normalizedError(mv, unbiasedVar) > 1e-3, 'the unbiased variance would differ measurably here');
        assert.ok(normalizedError(ours.inference, inferenceTruth) < TIGHT, 'inference with the moving statistics');
        if (layout === 'channels-first') {
          // stock tfjs cannot take this step: FusedBatchNorm's gradient reshapes dscale [N, C, H, W] to [1, C, 1, 1] unsummed
          await assert.rejects(stock(train), /Size\(300\) must match the product of shape 1,3,1,1/);
          return;
        }
        const theirs = await stock(train);
        for (let i = 0; i < 4; i++) assert.ok(normalizedError(theirs.weights[i], ours.weights[i]) < 1e-5, `weight ${i}: stock and normkit differ`);
        assert.ok(normalizedError(theirs.outputs[2], ours.outputs[2]) < 1e-5);
        assert.ok(normalizedError(theirs.inference, inferenceTruth) < 1e-5);
      });
    }

    it('re-serves FusedBatchNorm when tfjs switches to a backend whose kernel was registered again', async () => {
      // what importing a backend package after useNormkit does: it registers tfjs's own kernel over normkit's
      const other = backend === 'cpu' ? 'wasm' : 'cpu';
      handle.restore();
      const own = tf.getKernel('FusedBatchNorm', backend);
      await install();
      tf.unregisterKernel('FusedBatchNorm', backend);
      tf.registerKernel(own);
      assert.deepEqual(handle.servedBackends(), [other]);
      await tf.setBackend(other);
      await tf.setBackend(backend);
      assert.deepEqual(handle.servedBackends(), ['cpu', 'wasm']);
    });

    it('restore() puts tfjs\'s own kernel, gradient and layer back', async () => {
      handle.restore();
      try {
        assert.deepEqual(handle.servedBackends(), []);
        const shape = [2, 3, 2, 2];
        const k = makeCase(shape, 'channels-first');
        const p = paramShape(shape, 'channels-first');
        const truth = referenceNorm({ x: k.x, view: normView({ kind: 'batch' }, shape, 'channels-first'), gamma: k.gamma, beta: k.beta, eps: EPS, stats: { mu: k.mean, var: k.variance } }).y;
        const y = data(tf.batchNorm(tf.tensor(k.x, shape), tf.tensor(k.mean, p), tf.tensor(k.variance, p), tf.tensor(k.beta, p), tf.tensor(k.gamma, p), EPS));
        assert.ok(normalizedError(y, truth) > 0.05, 'tfjs\'s own kernel (with its axis-1 bug) is back');
        assert.equal(tf.getKernel('NormkitBatchNormTrain', backend), undefined);
        // the restored handle's op runs tfjs's own ops, and says so
        const before = notices.length;
        const x = tf.tensor(k.x, shape);
        const { y: trained } = handle.batchNormTraining(x, { axis: 1, epsilon: EPS });
        const batch = referenceNorm({ x: k.x, view: normView({ kind: 'batch' }, shape, 'channels-first'), eps: EPS }).y;
        assert.ok(normalizedError(data(trained), batch) > 0.05, 'tfjs\'s own ops, axis-1 bug included');
        assert.match(notices.slice(before).join('\n'), /normkit serves float32 on cpu, wasm and webgpu while installed; running tf.moments \+ tf.batchNorm/);
        const layer = tf.layers.batchNormalization({ scale: false });
        // tfjs's own training path reads gamma even with scale: false and throws; normkit's does not
        assert.throws(() => layer.apply(tf.ones([4, 3]), { training: true }), { name: 'TypeError', message: /Cannot read properties of undefined \(reading 'read'\)/ });
      } finally {
        await install();
      }
      const layer = tf.layers.batchNormalization({ scale: false, center: false });
      const y = data(layer.apply(tf.tensor([1, 2, 3, 5], [4, 1]), { training: true }) as Tensor);
      const truth = [1, 2, 3, 5].map((v) => (v - 2.75) / Math.sqrt(2.1875 + EPS));
      assert.ok(normalizedError(y, truth) < TIGHT);
    });
  });
}
