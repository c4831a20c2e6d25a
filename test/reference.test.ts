// The float64 oracle: node-by-node intermediates of the derivation, checked against their closed forms.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normView } from '../src/core/layout.ts';
import { referenceNorm } from '../src/reference/normalize.ts';
import { Random, maxAbsDiff } from './helpers.ts';

describe('reference (derivation, node by node)', () => {
  it('reproduces the derivation on the two-input graph', () => {
    const x = [1, 2];
    const eps = 1e-5;
    const view = normView({ kind: 'batch' }, [2, 1], 'channels-first');
    const r = referenceNorm({ x, dy: [0.3, -0.1], view, gamma: [1.5], beta: [0.2], eps });
    assert.equal(r.mu[0], 1.5);
    assert.equal(r.var[0], 0.25);
    // with two inputs xhat = +-sqrt(var/(var+eps))
    const mag = Math.sqrt(0.25 / (0.25 + eps));
    assert.ok(Math.abs(r.xhat[0] + mag) < 1e-15 && Math.abs(r.xhat[1] - mag) < 1e-15);
    assert.ok(Math.abs(r.y[0] - (1.5 * r.xhat[0] + 0.2)) < 1e-15);
    assert.ok(Math.abs(r.dbeta[0] - 0.2) < 1e-15);
    assert.ok(Math.abs(r.dgamma[0] - (0.3 * r.xhat[0] - 0.1 * r.xhat[1])) < 1e-15);
    assert.deepEqual(Array.from(r.dxhat), [0.3 * 1.5, -0.1 * 1.5]);
    // dL/dx nearly vanishes: only eps keeps it from zero
    assert.ok(Math.abs(r.dx[0]) < 1e-4 && Math.abs(r.dx[0] + r.dx[1]) < 1e-15);
  });

  it('returns the vanishing dvar term of dmu, and dx as the sum of its three terms', () => {
    const random = new Random(7);
    const shape = [4, 3, 5];
    const view = normView({ kind: 'batch' }, shape, 'channels-first');
    const x = random.normals(60, 3, 2);
    const r = referenceNorm({ x, dy: random.normals(60), view, gamma: [0.5, 1, 2], beta: [0, 1, 2], eps: 1e-5 });
    for (let q = 0; q < 3; q++) {
      // sum(-2(x - mu)) = 0 up to rounding, so the term is tiny next to dmu's first term
      assert.ok(Math.abs(r.dmuVarTerm[q]) < 1e-12 * Math.abs(r.dmu[q] - r.dmuVarTerm[q]) + 1e-15, `term ${r.dmuVarTerm[q]}`);
    }
    // dx is the exact sum of its terms, rounded once: their float64 sum differs only by the terms' rounding
    for (let i = 0; i < 60; i++) {
      const terms = [r.dxTerm1[i], r.dxTerm2[i], r.dxTerm3[i]];
      const bound = 4 * Number.EPSILON * terms.reduce((s, t) => s + Math.abs(t), 0);
      assert.ok(Math.abs(r.dx[i] - (terms[0] + terms[1] + terms[2])) <= bound, `dx[${i}]`);
    }
  });

  it('agrees with the closed form dx = gamma*rstd*(dy - mean(dy) - xhat*mean(dy*xhat)) for every norm', () => {
    const random = new Random(3);
    const shape = [3, 4, 2, 3];
    const cases = [
      normView({ kind: 'batch' }, shape, 'channels-first'),
      normView({ kind: 'instance' }, shape, 'channels-last'),
      normView({ kind: 'group', groups: 2 }, shape, 'channels-first'),
      normView({ kind: 'layer', normalizedRank: 2 }, shape, 'channels-first'),
    ];
    for (const view of cases) {
      const x = random.normals(72, 1, 3);
      const dy = random.normals(72);
      const k = view.groups * view.affinePerGroup;
      const gamma = random.normals(k, 1, 0.3);
      const r = referenceNorm({ x, dy, view, gamma, eps: 1e-3 });
      const m = r.m;
      const groups = r.mu.length;
      const sumDxhat = new Float64Array(groups);
      const sumDxhatXhat = new Float64Array(groups);
      const q = (i: number) => Math.floor(i / (view.inner * view.groups * view.span)) * view.groups + (Math.floor(i / view.inner) % view.groups);
      for (let i = 0; i < 72; i++) {
        sumDxhat[q(i)] += r.dxhat[i];
        sumDxhatXhat[q(i)] += r.dxhat[i] * r.xhat[i];
      }
      const closed = r.dx.map((_, i) => (r.dxhat[i] - sumDxhat[q(i)] / m - r.xhat[i] * (sumDxhatXhat[q(i)] / m)) / Math.sqrt(r.var[q(i)] + 1e-3));
      assert.ok(maxAbsDiff(r.dx, closed) < 1e-13, JSON.stringify(view));
    }
  });

  it('with given statistics, x reaches dx only through xhat', () => {
    const view = normView({ kind: 'batch' }, [3, 2], 'channels-first');
    const r = referenceNorm({ x: [1, 2, 3, 4, 5, 7], dy: [1, 1, 1, 1, 1, 1], view, eps: 0, stats: { mu: [0, 0], var: [4, 16] } });
    assert.deepEqual(Array.from(r.y), [0.5, 0.5, 1.5, 1, 2.5, 1.75]);
    assert.deepEqual(Array.from(r.dx), [0.5, 0.25, 0.5, 0.25, 0.5, 0.25]);
    assert.deepEqual(Array.from(r.dxTerm2), [0, 0, 0, 0, 0, 0]);
  });
});
