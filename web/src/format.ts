// Number formatting for the page: short on screen, full precision in data attributes.
export function short(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e-3 && abs < 1e5) return String(Number(value.toPrecision(5)));
  return value.toExponential(3);
}

/** A number as TeX, e.g. 1.2\times10^{-7}; negative numbers in parentheses where they follow an operator. */
export function tex(value: number, paren = false): string {
  const text = short(value);
  const match = /^(-?[\d.]+)e([+-]\d+)$/.exec(text);
  const body = match ? `${match[1]}\\times10^{${String(Number(match[2]))}}` : text;
  return paren && value < 0 ? `(${body})` : body;
}

const SUBSCRIPTS = '₀₁₂₃₄₅₆₇₈₉';

export function sub(i: number): string {
  return String(i)
    .split('')
    .map((d) => SUBSCRIPTS[Number(d)])
    .join('');
}
