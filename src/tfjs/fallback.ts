/** Says once per distinct case that a call went to tfjs's own kernel, and why (never a silent fallback). */
export type FallbackListener = (message: string) => void;

export class FallbackNotices {
  readonly #said = new Set<string>();
  readonly #listener: FallbackListener;

  constructor(listener: FallbackListener) {
    this.#listener = listener;
  }

  /** Reports `message` the first time it comes; later repeats are dropped. */
  say(message: string): void {
    if (this.#said.has(message)) return;
    this.#said.add(message);
    this.#listener(`normkit/tfjs: ${message}`);
  }

  /** Every distinct message said so far, in order. */
  get said(): readonly string[] {
    return [...this.#said];
  }
}
