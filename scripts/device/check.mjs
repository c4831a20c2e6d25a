// On the card: webgpu against the float64 reference on every norm and layout, plus the large-offset case.
import { backends, normView, referenceNorm, Random } from '../../dist/index.js';
import { startWebGpu } from '../../dist/node/index.js';
console.log('adapter:', await startWebGpu());
const k = backends.webgpu;
const rel = (a, t) => { let m = 0, s = 1e-12; for (let i = 0; i < t.length; i++) { m = Math.max(m, Math.abs(a[i] - t[i])); s = Math.max(s, Math.abs(t[i])); } return m / s; };
let worst = 0;
for (let [reduction, shape0, mean, std] of [
  [{ kind: 'batch' }, [32, 64, 56, 56], 0.5, 2], [{ kind: 'batch' }, [4, 2, 8, 8], 1000, 0.01], [{ kind: 'batch' }, [256, 1024], 0, 1],
  [{ kind: 'instance' }, [8, 16, 10, 10], 3, 1], [{ kind: 'group', groups: 4 }, [8, 16, 10, 10], 0, 1], [{ kind: 'layer', normalizedRank: 1 }, [512, 1024], 5, 1],
]) for (const layout of ['channels-first', 'channels-last']) {
  let shape = shape0;
  if (layout === 'channels-last' && reduction.kind !== 'layer') shape = [shape[0], ...shape.slice(2), shape[1]];
  const view = normView(reduction, shape, layout);
  const r = new Random(1);
  const n = shape.reduce((p, d) => p * d, 1), kk = view.groups * view.affinePerGroup, c = view.outer * view.groups;
  const x = Float32Array.from(r.normals(n, mean, std)), dy = Float32Array.from(r.normals(n));
  const w = Float32Array.from(r.normals(kk, 1, 0.3)), b = Float32Array.from(r.normals(kk));
  const y = new Float32Array(n), dx = new Float32Array(n), dw = new Float32Array(kk), db = new Float32Array(kk);
  const mu = new Float64Array(c), v = new Float64Array(c), rs = new Float64Array(c);
  k.forwardTrain(y, x, view, w, b, 1e-5, mu, v, rs);
  k.backward(dx, dw, db, dy, x, view, w, mu, rs, true);
  const ref = referenceNorm({ x, dy, view, gamma: w, beta: b, eps: 1e-5 });
  const errs = { y: rel(y, ref.y), dx: rel(dx, ref.dx), dweight: rel(dw, ref.dgamma), dbias: rel(db, ref.dbeta) };
  worst = Math.max(worst, ...Object.values(errs));
  console.log(reduction.kind, shape.join('x'), layout, `offset ${mean}`, Object.entries(errs).map(([n, e]) => `${n} ${e.toExponential(1)}`).join(', '));
}
console.log('worst normalized error vs float64:', worst.toExponential(2));
