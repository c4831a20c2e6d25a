/**
 * WebSocketCommunicator: one rank of a group whose coordinator (rank 0's process, src/node/coordinator.ts)
 * relays collectives over WebSocket: each rank sends its values, the coordinator adds them up (all-reduce)
 * or concatenates them (all-gather) in rank order and sends every rank the same bytes, so every rank ends a
 * step with the same bits. Universal: the transport is the browser's WebSocket or Node's `ws`
 * (src/node/websocket-group.ts). Faults end in a NormkitError on every pending and later call: an error
 * the coordinator reports (which rank failed and how), a lost connection, a coordinator silent for the
 * timeout (it beats every heartbeatMs, so an idle but living group is never silent), or no result within the timeout.
 */
import { NormkitError } from '../../errors.js';
import type { CollectiveTag, Communicator } from './communicator.js';
import { DEFAULT_TIMEOUT_MS, checkTimeout, checkWorldSize } from './communicator.js';
import type { Frame } from './frame.js';
import { HEADER_BYTES, Kind, NO_LAYER, decodeFrame, encodeFrame, encodeText, encodeValues, kindName, payloadText, payloadValues } from './frame.js';

/** What a transport tells the communicator. */
export interface TransportEvents {
  open(): void;
  message(bytes: Uint8Array): void;
  closed(code: number, reason: string): void;
}

/** A connection that sends binary frames: a browser WebSocket or a `ws` socket behind a small adapter. */
export interface Transport {
  send(bytes: Uint8Array<ArrayBuffer>): void;
  close(code: number, reason: string): void;
}

export type OpenTransport = (events: TransportEvents) => Transport;

export interface WebSocketGroupOptions {
  readonly rank: number;
  readonly worldSize: number;
  /** The shared secret every rank presents to join. */
  readonly token: string;
  /** How long to wait for the group to form and for each collective, in ms (default 60,000). */
  readonly timeoutMs?: number | undefined;
  /** Heartbeat interval in ms (default 1,000): a peer heard from for timeoutMs fails the group, idle or not. */
  readonly heartbeatMs?: number | undefined;
  /** Most float64 values one collective may carry (default 2^20); larger frames are refused. */
  readonly maxValues?: number | undefined;
}

/** The options once checked, defaults filled in. */
export interface GroupSettings {
  readonly rank: number;
  readonly worldSize: number;
  readonly token: string;
  readonly timeoutMs: number;
  readonly heartbeatMs: number;
  readonly maxValues: number;
}

export const DEFAULT_HEARTBEAT_MS = 1000;
export const DEFAULT_MAX_VALUES = 2 ** 20;

interface Pending {
  readonly kind: typeof Kind.reduce | typeof Kind.gather;
  readonly layer: number;
  readonly length: number;
  readonly resolve: (result: Float64Array) => void;
  readonly reject: (error: NormkitError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** Checked numeric options of a WebSocket group (shared by the coordinator and the ranks). */
export function readGroupOptions(options: WebSocketGroupOptions, who: string): GroupSettings {
  const worldSize = checkWorldSize(options.worldSize, who);
  const { rank, token } = options;
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new NormkitError('option', `${who}: rank must be an integer in [0, ${worldSize}), got ${String(rank)}`);
  if (typeof token !== 'string' || token.length === 0 || token.length > 1024) throw new NormkitError('option', `${who}: token must be a non-empty string of at most 1024 characters`);
  const timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, who);
  const heartbeatMs = checkTimeout(options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, `${who} (heartbeatMs)`);
  const maxValues = options.maxValues ?? DEFAULT_MAX_VALUES;
  if (!Number.isInteger(maxValues) || maxValues < 1 || maxValues > 2 ** 28) throw new NormkitError('option', `${who}: maxValues must be an integer in [1, 2^28], got ${maxValues}`);
  return { rank, worldSize, token, timeoutMs, heartbeatMs, maxValues };
}

export class WebSocketCommunicator implements Communicator {
  readonly worldSize: number;
  readonly rank: number;
  readonly #options: GroupSettings;
  readonly #transport: Transport;
  #step = 0;
  readonly #pending = new Map<number, Pending>();
  #failure: NormkitError | null = null;
  #closed = false;
  #lastHeard = Date.now();
  readonly #watch: ReturnType<typeof setInterval>;
  #joined: { resolve: () => void; reject: (error: NormkitError) => void } | null = null;

  private constructor(options: GroupSettings, open: OpenTransport) {
    this.#options = options;
    this.worldSize = options.worldSize;
    this.rank = options.rank;
    this.#transport = open({
      open: () => {
        this.#send(encodeText(this.#header(Kind.hello, 0, NO_LAYER), options.token));
      },
      message: (bytes) => {
        this.#receive(bytes);
      },
      closed: (code, reason) => {
        if (!this.#closed) this.#fail(new NormkitError('backend', `rank ${this.rank}: the connection to the coordinator (rank 0) closed (code ${code}${reason === '' ? '' : `: ${reason}`})`));
      },
    });
    // the coordinator beats every heartbeatMs: silence for the timeout means it (or the path to it) is gone.
    // Time this process spent blocked (a long synchronous computation) is not the coordinator's silence.
    let lastTick = Date.now();
    this.#watch = setInterval(() => {
      const now = Date.now();
      if (now - lastTick > 2 * options.heartbeatMs) this.#lastHeard = now;
      lastTick = now;
      const silent = now - this.#lastHeard;
      if (silent > options.timeoutMs) this.#fail(new NormkitError('backend', `rank ${this.rank}: heard nothing from the coordinator (rank 0) for ${silent} ms (heartbeat every ${options.heartbeatMs} ms, timeout ${options.timeoutMs} ms)`));
    }, options.heartbeatMs);
  }

  /** Joins the group; resolves once every rank has joined (or fails within timeoutMs, naming what happened). */
  static async connect(options: WebSocketGroupOptions, open: OpenTransport): Promise<WebSocketCommunicator> {
    const checked = readGroupOptions(options, 'WebSocketCommunicator');
    const communicator = new WebSocketCommunicator(checked, open);
    await communicator.#join();
    return communicator;
  }

  #join(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new NormkitError('backend', `rank ${this.rank}: the group of ${this.worldSize} did not form within ${this.#options.timeoutMs} ms`));
      }, this.#options.timeoutMs);
      this.#joined = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  #header(kind: (typeof Kind)[keyof typeof Kind], step: number, layer: number): { kind: typeof kind; step: number; layer: number; world: number; rank: number } {
    return { kind, step, layer, world: this.worldSize, rank: this.rank };
  }

  #send(bytes: Uint8Array<ArrayBuffer>): void {
    try {
      this.#transport.send(bytes);
    } catch (error) {
      this.#fail(new NormkitError('backend', `rank ${this.rank}: sending to the coordinator failed: ${error instanceof Error ? error.message : String(error)}`));
    }
  }

  /** Every frame from the coordinator, checked before use; a bad one fails the group and closes the connection. */
  #receive(bytes: Uint8Array): void {
    this.#lastHeard = Date.now();
    if (this.#failure !== null) return;
    let frame: Frame;
    try {
      frame = decodeFrame(bytes, HEADER_BYTES + this.worldSize * this.#options.maxValues * 8);
      if (frame.world !== this.worldSize) throw new NormkitError('backend', `malformed frame: world ${frame.world}, expected ${this.worldSize}`);
    } catch (error) {
      this.#fail(new NormkitError('backend', `rank ${this.rank}: refused a frame from the coordinator: ${error instanceof Error ? error.message : String(error)}`));
      return;
    }
    switch (frame.kind) {
      case Kind.heartbeat:
        this.#send(encodeFrame(this.#header(Kind.heartbeat, 0, NO_LAYER)));
        return;
      case Kind.ready:
        this.#joined?.resolve();
        this.#joined = null;
        return;
      case Kind.error:
        this.#fail(new NormkitError('backend', payloadText(frame)));
        return;
      case Kind.result:
        this.#result(frame);
        return;
      default:
        this.#fail(new NormkitError('backend', `rank ${this.rank}: the coordinator sent a ${kindName(frame.kind)} frame, which only ranks send`));
    }
  }

  #result(frame: Frame): void {
    const pending = this.#pending.get(frame.step);
    try {
      if (pending === undefined) throw new NormkitError('backend', `a result for step ${frame.step}, which this rank is not waiting for`);
      if (frame.layer !== pending.layer) throw new NormkitError('backend', `a result for layer ${frame.layer} at step ${frame.step}, expected layer ${pending.layer}`);
      const values = payloadValues(frame);
      const expected = pending.kind === Kind.reduce ? pending.length : pending.length * this.worldSize;
      if (values.length !== expected) throw new NormkitError('backend', `a result of ${values.length} values at step ${frame.step}, expected ${pending.length}`);
      this.#pending.delete(frame.step);
      clearTimeout(pending.timer);
      pending.resolve(values);
    } catch (error) {
      this.#fail(new NormkitError('backend', `rank ${this.rank}: refused a frame from the coordinator: ${error instanceof Error ? error.message : String(error)}`));
    }
  }

  #fail(error: NormkitError): void {
    if (this.#failure !== null) return;
    this.#failure = error;
    clearInterval(this.#watch);
    this.#joined?.reject(error);
    this.#joined = null;
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
    this.#closed = true;
    this.#transport.close(1000, 'group failed');
  }

  #collective(kind: typeof Kind.reduce | typeof Kind.gather, values: Float64Array, tag: CollectiveTag | undefined): Promise<Float64Array> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new NormkitError('backend', `rank ${this.rank}: the communicator is closed`));
    if (values.length > this.#options.maxValues) return Promise.reject(new NormkitError('size', `rank ${this.rank}: ${values.length} values exceed the group's maxValues of ${this.#options.maxValues}`));
    const step = ++this.#step;
    const layer = tag?.layer ?? NO_LAYER;
    return new Promise<Float64Array>((resolve, reject) => {
      // the coordinator times a step out first; this bound covers a coordinator that went quiet
      const wait = this.#options.timeoutMs + 2 * this.#options.heartbeatMs;
      const timer = setTimeout(() => {
        this.#fail(new NormkitError('backend', `rank ${this.rank}: no result for step ${step} (${tag?.what ?? kindName(kind)}, layer ${layer === NO_LAYER ? 'none' : layer}) within ${wait} ms`));
      }, wait);
      this.#pending.set(step, { kind, layer, length: values.length, resolve, reject, timer });
      this.#send(encodeValues(this.#header(kind, step, layer), values));
    });
  }

  async allReduce(values: Float64Array, tag?: CollectiveTag): Promise<void> {
    values.set(await this.#collective(Kind.reduce, values, tag));
  }

  async allGather(values: Float64Array, tag?: CollectiveTag): Promise<Float64Array[]> {
    const result = await this.#collective(Kind.gather, values, tag);
    return Array.from({ length: this.worldSize }, (_, r) => result.subarray(r * values.length, (r + 1) * values.length));
  }

  abort(reason: string): void {
    if (this.#failure !== null || this.#closed) return;
    this.#send(encodeText(this.#header(Kind.error, this.#step, NO_LAYER), reason));
  }

  /** Leaves the group: the coordinator knows this rank is done (its close is not a failure). */
  close(): void {
    if (this.#closed) return;
    clearInterval(this.#watch);
    if (this.#failure === null) this.#send(encodeFrame(this.#header(Kind.bye, this.#step, NO_LAYER)));
    this.#closed = true;
    this.#transport.close(1000, 'done');
  }
}
