// The page's state, kept in the URL: ?x=1,2&gamma=1.5&beta=0.2&eps=1e-5&dy=0.3,-0.1&momentum=0.1&steps=5&seed=1&lang=en
export interface Params {
  readonly x: readonly number[];
  readonly gamma: number;
  readonly beta: number;
  readonly eps: number;
  readonly dy: readonly number[];
  /** The training view's momentum; null for the cumulative average. */
  readonly momentum: number | null;
  /** The training view's number of steps and the seed of its random batches. */
  readonly steps: number;
  readonly seed: number;
}

export const MIN_N = 2;
export const MAX_N = 8;
export const MIN_STEPS = 1;
export const MAX_STEPS = 12;

/** The derivation's own case: two inputs in one channel; PyTorch's default momentum. */
export const defaults: Params = { x: [1, 2], gamma: 1.5, beta: 0.2, eps: 1e-5, dy: [0.3, -0.1], momentum: 0.1, steps: 5, seed: 1 };

/** dy for n inputs when none is given: the default pattern, repeated. */
export function defaultDy(n: number): number[] {
  return Array.from({ length: n }, (_, i) => [0.3, -0.1, 0.2, -0.4][i % 4]);
}

/** Default x for n inputs: the default pair, continued. */
export function defaultX(n: number): number[] {
  return Array.from({ length: n }, (_, i) => [1, 2, 0.5, 3, -1, 2.5, 1.5, 0][i % 8]);
}

/** A message for the reader: a translation key (problems.*) and its values. */
export interface Problem {
  readonly key: string;
  readonly values: Readonly<Record<string, string | number>>;
}

export interface Parsed {
  readonly params: Params;
  /** One per malformed parameter, naming it and what was used instead. */
  readonly problems: readonly Problem[];
}

export function parseNumber(text: string): number | null {
  if (text.trim() === '') return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

function parseList(text: string): number[] | null {
  const values = text.split(',').map(parseNumber);
  return values.every((v): v is number => v !== null) ? values : null;
}

/** The rules a scalar parameter must meet, shared by the URL and the page's fields. */
export const rules = {
  gamma: { check: () => true, problem: 'notNumber', rule: 'ruleNumber' },
  beta: { check: () => true, problem: 'notNumber', rule: 'ruleNumber' },
  eps: { check: (v: number) => v > 0, problem: 'notPositive', rule: 'rulePositive' },
  steps: { check: (v: number) => Number.isInteger(v) && v >= MIN_STEPS && v <= MAX_STEPS, problem: 'notSteps', rule: 'ruleSteps' },
  seed: { check: (v: number) => Number.isInteger(v) && v >= 0 && v < 2 ** 32, problem: 'notSeed', rule: 'ruleSeed' },
  momentum: { check: (v: number) => v >= 0 && v <= 1, problem: 'notMomentum', rule: 'ruleMomentum' },
} as const;

export const ruleBounds = { min: MIN_STEPS, max: MAX_STEPS };

/** Reads the parameters; a malformed one is reported and replaced by its default, never dropped silently. */
export function parseParams(search: string): Parsed {
  const query = new URLSearchParams(search);
  const problems: Problem[] = [];
  let x = [...defaults.x];
  const xText = query.get('x');
  if (xText !== null) {
    const list = parseList(xText);
    if (list === null) problems.push({ key: 'notList', values: { name: 'x', text: xText, using: x.join(',') } });
    else if (list.length < MIN_N || list.length > MAX_N) problems.push({ key: 'countX', values: { name: 'x', count: list.length, min: MIN_N, max: MAX_N, using: x.join(',') } });
    else x = list;
  }
  const scalar = (name: 'gamma' | 'beta' | 'eps' | 'steps' | 'seed'): number => {
    const text = query.get(name);
    if (text === null) return defaults[name];
    const value = parseNumber(text);
    if (value === null || !rules[name].check(value)) {
      problems.push({ key: rules[name].problem, values: { name, text, using: defaults[name], ...ruleBounds } });
      return defaults[name];
    }
    return value;
  };
  const gamma = scalar('gamma');
  const beta = scalar('beta');
  const eps = scalar('eps');
  const steps = scalar('steps');
  const seed = scalar('seed');
  let dy = x.length === defaults.x.length ? [...defaults.dy] : defaultDy(x.length);
  const dyText = query.get('dy');
  if (dyText !== null) {
    const list = parseList(dyText);
    if (list === null) problems.push({ key: 'notList', values: { name: 'dy', text: dyText, using: dy.join(',') } });
    else if (list.length !== x.length) problems.push({ key: 'countDy', values: { name: 'dy', count: list.length, n: x.length, using: dy.join(',') } });
    else dy = list;
  }
  // momentum= (empty) is PyTorch's momentum=None: the cumulative average
  let momentum = defaults.momentum;
  const momentumText = query.get('momentum');
  if (momentumText !== null) {
    const value = parseNumber(momentumText);
    if (momentumText.trim() === '') momentum = null;
    else if (value === null || !rules.momentum.check(value)) problems.push({ key: 'notMomentum', values: { name: 'momentum', text: momentumText, using: String(defaults.momentum) } });
    else momentum = value;
  }
  return { params: { x, gamma, beta, eps, dy, momentum, steps, seed }, problems };
}

export function toSearch(p: Params, language: string): string {
  const query = new URLSearchParams({
    x: p.x.join(','),
    gamma: String(p.gamma),
    beta: String(p.beta),
    eps: String(p.eps),
    dy: p.dy.join(','),
    momentum: p.momentum === null ? '' : String(p.momentum),
    steps: String(p.steps),
    seed: String(p.seed),
    lang: language,
  });
  return `?${query.toString().replaceAll('%2C', ',')}`;
}
