// The backward pass walked in the derivation's order: beta, gamma -> xhat -> sigma^2 -> mu -> x.
// Each step names the nodes it computes and its formula with the numbers substituted (KaTeX), one line
// per equation so that a narrow screen can wrap each line after its = and + signs.
import { short, tex } from './format.ts';
import type { Model } from './model.ts';

export interface Step {
  readonly id: 'beta' | 'gamma' | 'xhat' | 'var' | 'mu' | 'x';
  /** data-node ids this step computes. */
  readonly nodes: (m: Model) => string[];
  /** TeX, one equation per entry. */
  readonly formula: (m: Model) => string[];
  /** Values the translated note needs. */
  readonly noteValues: (m: Model) => Record<string, string>;
}

const d = (what: string) => `\\frac{\\partial L}{\\partial ${what}}`;
const each = (m: Model) => Array.from({ length: m.n }, (_, i) => i);
const sum = (terms: string[]) => terms.join(' + ');
const none = () => ({});

export const forwardFormula = [
  '\\mu=\\tfrac{1}{N}\\sum_i x_i,',
  '\\sigma^2=\\tfrac{1}{N}\\sum_i (x_i-\\mu)^2,',
  '\\hat{x}_i=\\frac{x_i-\\mu}{\\sqrt{\\sigma^2+\\epsilon}},',
  'y_i=\\gamma\\hat{x}_i+\\beta',
];

export const steps: readonly Step[] = [
  {
    id: 'beta',
    nodes: () => ['beta'],
    formula: (m) => [`${d('\\beta')} = \\sum_{i=1}^{N} ${d('y_i')} = ${sum(each(m).map((i) => tex(m.params.dy[i], true)))} = ${tex(m.ref.dbeta[0])}`],
    noteValues: none,
  },
  {
    id: 'gamma',
    nodes: () => ['gamma'],
    formula: (m) => [
      `${d('\\gamma')} = \\sum_{i=1}^{N} ${d('y_i')}\\,\\hat{x}_i = ${sum(each(m).map((i) => `${tex(m.params.dy[i], true)}\\cdot${tex(m.ref.xhat[i], true)}`))} = ${tex(m.ref.dgamma[0])}`,
    ],
    noteValues: none,
  },
  {
    id: 'xhat',
    nodes: (m) => each(m).map((i) => `xhat${i + 1}`),
    formula: (m) => [
      `${d('\\hat{x}_i')} = ${d('y_i')}\\,\\gamma`,
      ...each(m).map((i) => `${d(`\\hat{x}_{${i + 1}}`)} = ${tex(m.params.dy[i], true)}\\cdot${tex(m.params.gamma, true)} = ${tex(m.ref.dxhat[i])}`),
    ],
    noteValues: none,
  },
  {
    id: 'var',
    nodes: () => ['var'],
    formula: (m) => {
      const mu = m.ref.mu[0];
      const factor = -0.5 * (m.ref.var[0] + m.params.eps) ** -1.5;
      return [
        `${d('\\sigma^2')} = \\sum_{i=1}^{N} ${d('\\hat{x}_i')}\\,(x_i-\\mu)\\cdot\\bigl(-\\tfrac{1}{2}\\bigr)(\\sigma^2+\\epsilon)^{-3/2}`,
        `= ${tex(factor, true)}\\cdot\\bigl[${sum(each(m).map((i) => `${tex(m.ref.dxhat[i], true)}\\cdot${tex(m.params.x[i] - mu, true)}`))}\\bigr] = ${tex(m.ref.dvar[0])}`,
      ];
    },
    noteValues: none,
  },
  {
    id: 'mu',
    nodes: () => ['mu'],
    formula: (m) => {
      const first = m.ref.dmu[0] - m.ref.dmuVarTerm[0];
      const centered = m.params.x.reduce((s, v) => s - 2 * (v - m.ref.mu[0]), 0);
      return [
        `${d('\\mu')} = \\sum_{i=1}^{N} ${d('\\hat{x}_i')}\\cdot\\frac{-1}{\\sqrt{\\sigma^2+\\epsilon}} + ${d('\\sigma^2')}\\cdot\\frac{\\sum_{i} -2(x_i-\\mu)}{N}`,
        `= ${tex(first)} + ${tex(m.ref.dvar[0], true)}\\cdot\\frac{${tex(centered)}}{${m.n}} = ${tex(first)} + ${tex(m.ref.dmuVarTerm[0], true)} = ${tex(m.ref.dmu[0])}`,
      ];
    },
    noteValues: (m) => ({ term: short(m.ref.dmuVarTerm[0]) }),
  },
  {
    id: 'x',
    nodes: (m) => each(m).map((i) => `x${i + 1}`),
    formula: (m) => [
      `${d('x_i')} = ${d('\\hat{x}_i')}\\frac{1}{\\sqrt{\\sigma^2+\\epsilon}} + ${d('\\sigma^2')}\\frac{2(x_i-\\mu)}{N} + ${d('\\mu')}\\frac{1}{N}`,
      ...each(m).map((i) => `${d(`x_{${i + 1}}`)} = ${tex(m.ref.dxTerm1[i])} + ${tex(m.ref.dxTerm2[i], true)} + ${tex(m.ref.dxTerm3[i], true)} = ${tex(m.ref.dx[i])}`),
    ],
    noteValues: none,
  },
];
