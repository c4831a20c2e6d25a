// The backward pass walked in the derivation's order: beta, gamma -> xhat -> sigma^2 -> mu -> x.
// Each step names the nodes it computes and its formula with the numbers substituted (KaTeX).
import { short, tex } from './format.ts';
import type { Model } from './model.ts';

export interface Step {
  readonly id: 'beta' | 'gamma' | 'xhat' | 'var' | 'mu' | 'x';
  readonly title: string;
  /** data-node ids this step computes. */
  readonly nodes: (m: Model) => string[];
  readonly formula: (m: Model) => string;
  /** Plain-text explanation shown under the formula. */
  readonly note: (m: Model) => string;
}

const d = (what: string) => `\\frac{\\partial L}{\\partial ${what}}`;
const each = (m: Model) => Array.from({ length: m.n }, (_, i) => i);
const sum = (terms: string[]) => terms.join(' + ');
const lines = (rows: string[]) => `\\begin{aligned}${rows.join(' \\\\ ')}\\end{aligned}`;

export const steps: readonly Step[] = [
  {
    id: 'beta',
    title: 'dL/dβ: β is added to every output',
    nodes: () => ['beta'],
    formula: (m) =>
      `${d('\\beta')} = \\sum_{i=1}^{N} ${d('y_i')} = ${sum(each(m).map((i) => tex(m.params.dy[i], true)))} = ${tex(m.ref.dbeta[0])}`,
    note: () => 'Each y_i = γ·x̂_i + β depends on β with slope 1, so the gradient is the sum of the incoming dL/dy_i.',
  },
  {
    id: 'gamma',
    title: 'dL/dγ: γ scales every normalized value',
    nodes: () => ['gamma'],
    formula: (m) =>
      `${d('\\gamma')} = \\sum_{i=1}^{N} ${d('y_i')}\\,\\hat{x}_i = ${sum(each(m).map((i) => `${tex(m.params.dy[i], true)}\\cdot${tex(m.ref.xhat[i], true)}`))} = ${tex(m.ref.dgamma[0])}`,
    note: () => '∂y_i/∂γ = x̂_i: each output contributes dL/dy_i times its normalized input.',
  },
  {
    id: 'xhat',
    title: 'dL/dx̂ᵢ: through the scale γ',
    nodes: (m) => each(m).map((i) => `xhat${i + 1}`),
    formula: (m) =>
      lines([
        `${d('\\hat{x}_i')} &= ${d('y_i')}\\,\\gamma`,
        ...each(m).map((i) => `${d(`\\hat{x}_{${i + 1}}`)} &= ${tex(m.params.dy[i], true)}\\cdot${tex(m.params.gamma, true)} = ${tex(m.ref.dxhat[i])}`),
      ]),
    note: () => 'Each x̂_i feeds only y_i, with slope γ.',
  },
  {
    id: 'var',
    title: 'dL/dσ²: every x̂ᵢ depends on the variance',
    nodes: () => ['var'],
    formula: (m) => {
      const { mu, eps } = { mu: m.ref.mu[0], eps: m.params.eps };
      const factor = -0.5 * (m.ref.var[0] + eps) ** -1.5;
      return lines([
        `${d('\\sigma^2')} &= \\sum_{i=1}^{N} ${d('\\hat{x}_i')}\\,(x_i-\\mu)\\cdot\\left(-\\tfrac{1}{2}\\right)(\\sigma^2+\\epsilon)^{-3/2}`,
        `&= ${tex(factor, true)}\\cdot\\left[${sum(each(m).map((i) => `${tex(m.ref.dxhat[i], true)}\\cdot${tex(m.params.x[i] - mu, true)}`))}\\right]`,
        `&= ${tex(m.ref.dvar[0])}`,
      ]);
    },
    note: () => 'x̂_i = (x_i − μ)(σ² + ε)^(−1/2), so ∂x̂_i/∂σ² = −½(x_i − μ)(σ² + ε)^(−3/2).',
  },
  {
    id: 'mu',
    title: 'dL/dμ: directly through every x̂ᵢ, and through σ²',
    nodes: () => ['mu'],
    formula: (m) => {
      const first = m.ref.dmu[0] - m.ref.dmuVarTerm[0];
      const centered = m.params.x.reduce((s, v) => s - 2 * (v - m.ref.mu[0]), 0);
      return lines([
        `${d('\\mu')} &= \\sum_{i=1}^{N} ${d('\\hat{x}_i')}\\cdot\\frac{-1}{\\sqrt{\\sigma^2+\\epsilon}} + ${d('\\sigma^2')}\\cdot\\frac{\\sum_{i} -2(x_i-\\mu)}{N}`,
        `&= ${tex(first)} + ${tex(m.ref.dvar[0], true)}\\cdot\\frac{${tex(centered)}}{${m.n}}`,
        `&= ${tex(first)} + ${tex(m.ref.dmuVarTerm[0], true)} = ${tex(m.ref.dmu[0])}`,
      ]);
    },
    note: (m) =>
      `The second term is ${short(m.ref.dmuVarTerm[0])}: zero up to rounding, because Σ(x_i − μ) = 0 by the definition of μ — the derivation drops it.`,
  },
  {
    id: 'x',
    title: 'dL/dxᵢ: three paths — through x̂ᵢ, σ² and μ',
    nodes: (m) => each(m).map((i) => `x${i + 1}`),
    formula: (m) =>
      lines([
        `${d('x_i')} &= ${d('\\hat{x}_i')}\\frac{1}{\\sqrt{\\sigma^2+\\epsilon}} + ${d('\\sigma^2')}\\frac{2(x_i-\\mu)}{N} + ${d('\\mu')}\\frac{1}{N}`,
        ...each(m).map(
          (i) => `${d(`x_{${i + 1}}`)} &= ${tex(m.ref.dxTerm1[i])} + ${tex(m.ref.dxTerm2[i], true)} + ${tex(m.ref.dxTerm3[i], true)} = ${tex(m.ref.dx[i])}`,
        ),
      ]),
    note: () => 'The three terms are the three edges leaving x_i in the graph, each times the gradient at its far end.',
  },
];
