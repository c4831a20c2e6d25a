// The page's state, kept in the URL: ?x=1,2&gamma=1.5&beta=0.2&eps=1e-5&dy=0.3,-0.1
export interface Params {
  readonly x: readonly number[];
  readonly gamma: number;
  readonly beta: number;
  readonly eps: number;
  readonly dy: readonly number[];
}

export const MIN_N = 2;
export const MAX_N = 8;

/** The derivation's own case: two inputs in one channel. */
export const defaults: Params = { x: [1, 2], gamma: 1.5, beta: 0.2, eps: 1e-5, dy: [0.3, -0.1] };

/** dy for n inputs when none is given: the default pattern, repeated. */
export function defaultDy(n: number): number[] {
  return Array.from({ length: n }, (_, i) => [0.3, -0.1, 0.2, -0.4][i % 4]);
}

/** Default x for n inputs: the default pair, continued. */
export function defaultX(n: number): number[] {
  return Array.from({ length: n }, (_, i) => [1, 2, 0.5, 3, -1, 2.5, 1.5, 0][i % 8]);
}

export interface Parsed {
  readonly params: Params;
  /** One line per malformed parameter, naming it and what was used instead. */
  readonly problems: readonly string[];
}

function parseNumber(text: string): number | null {
  if (text.trim() === '') return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

function parseList(text: string): number[] | null {
  const values = text.split(',').map(parseNumber);
  return values.every((v): v is number => v !== null) ? values : null;
}

/** Reads the parameters; a malformed one is reported and replaced by its default, never dropped silently. */
export function parseParams(search: string): Parsed {
  const query = new URLSearchParams(search);
  const problems: string[] = [];
  let x = [...defaults.x];
  const xText = query.get('x');
  if (xText !== null) {
    const list = parseList(xText);
    if (list === null) problems.push(`x: '${xText}' is not a comma-separated list of numbers; using ${x.join(',')}`);
    else if (list.length < MIN_N || list.length > MAX_N) problems.push(`x: ${list.length} values; N must be ${MIN_N} to ${MAX_N}; using ${x.join(',')}`);
    else x = list;
  }
  const scalar = (name: 'gamma' | 'beta' | 'eps', check: (v: number) => boolean, rule: string): number => {
    const text = query.get(name);
    if (text === null) return defaults[name];
    const value = parseNumber(text);
    if (value === null || !check(value)) {
      problems.push(`${name}: '${text}' is not ${rule}; using ${defaults[name]}`);
      return defaults[name];
    }
    return value;
  };
  const gamma = scalar('gamma', () => true, 'a number');
  const beta = scalar('beta', () => true, 'a number');
  const eps = scalar('eps', (v) => v > 0, 'a number > 0');
  let dy = x.length === defaults.x.length ? [...defaults.dy] : defaultDy(x.length);
  const dyText = query.get('dy');
  if (dyText !== null) {
    const list = parseList(dyText);
    if (list === null) problems.push(`dy: '${dyText}' is not a comma-separated list of numbers; using ${dy.join(',')}`);
    else if (list.length !== x.length) problems.push(`dy: ${list.length} values for ${x.length} inputs; using ${dy.join(',')}`);
    else dy = list;
  }
  return { params: { x, gamma, beta, eps, dy }, problems };
}

export function toSearch(p: Params): string {
  const query = new URLSearchParams({ x: p.x.join(','), gamma: String(p.gamma), beta: String(p.beta), eps: String(p.eps), dy: p.dy.join(',') });
  return `?${query.toString().replaceAll('%2C', ',')}`;
}
