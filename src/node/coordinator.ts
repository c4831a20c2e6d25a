/**
 * The coordinator of a WebSocket group, hosted by rank 0's process (as torchrun's rendezvous store is):
 * ranks join with the shared token (compared in constant time), and for every collective step it waits
 * for every rank's frame, checks they agree (kind, layer, length), adds them up or concatenates them in
 * rank order, and sends every rank the same result. Any fault fails the whole group with one error that
 * names the rank and what happened, sent to every rank still connected: a rank that drops or dies, one
 * silent for the timeout (ranks answer heartbeats, so only a dead or cut-off one is), one that never joins or misses a step within the timeout, a frame that
 * is malformed or oversized, a rank calling with another layer or shape, or a rank that aborts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { WebSocket } from 'ws';
import { WebSocketServer } from 'ws';
import { NormkitError } from '../errors.js';
import { sumInRankOrder } from '../nn/sync/communicator.js';
import type { Frame } from '../nn/sync/frame.js';
import { HEADER_BYTES, Kind, NO_LAYER, decodeFrame, encodeFrame, encodeText, encodeValues, kindName, payloadText, payloadValues } from '../nn/sync/frame.js';
import type { WebSocketGroupOptions } from '../nn/sync/websocket.js';
import { readGroupOptions } from '../nn/sync/websocket.js';

export interface CoordinatorOptions extends Omit<WebSocketGroupOptions, 'rank'> {
  /** Port to listen on (0: any free port; see Coordinator.port). */
  readonly port: number;
  /** Address to bind (default 127.0.0.1: only this host can join). */
  readonly host?: string | undefined;
  /** PEM certificate and key: the group runs over wss:// (TLS). */
  readonly tls?: { readonly cert: string; readonly key: string } | undefined;
}

interface Step {
  readonly kind: number;
  readonly layer: number;
  readonly length: number;
  /** the rank whose frame set kind, layer and length */
  readonly first: number;
  readonly parts: (Float64Array | null)[];
  arrived: number;
  readonly timer: ReturnType<typeof setTimeout>;
}

const digest = (text: string | Uint8Array): Buffer => createHash('sha256').update(text).digest();

function describeCall(kind: number, layer: number, length: number): string {
  return `${kind === Kind.gather ? 'all-gather' : 'all-reduce'} for ${layer === NO_LAYER ? 'no layer' : `layer ${layer}`} with ${length} values`;
}

export class Coordinator {
  readonly worldSize: number;
  readonly #options: ReturnType<typeof readGroupOptions>;
  readonly #tokenDigest: Buffer;
  readonly #server: WebSocketServer;
  readonly #http: HttpServer | null;
  readonly #sockets: (WebSocket | null)[];
  readonly #lastHeard: number[];
  #lastBeat = Date.now();
  readonly #left: boolean[];
  readonly #steps = new Map<number, Step>();
  readonly #nextStep: number[];
  #failure: string | null = null;
  #ready = false;
  readonly #joinTimer: ReturnType<typeof setTimeout>;
  readonly #beat: ReturnType<typeof setInterval>;
  readonly #listening: Promise<number>;
  #closing: Promise<void> | null = null;
  #markClosed: () => void = () => undefined;
  readonly #closedPromise = new Promise<void>((resolve) => {
    this.#markClosed = resolve;
  });

  constructor(options: CoordinatorOptions) {
    this.#options = readGroupOptions({ ...options, rank: 0 }, 'Coordinator');
    const { worldSize, timeoutMs, heartbeatMs, maxValues } = this.#options;
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) throw new NormkitError('option', `Coordinator: port must be an integer in [0, 65535], got ${options.port}`);
    this.worldSize = worldSize;
    this.#tokenDigest = digest(this.#options.token);
    this.#sockets = new Array<WebSocket | null>(worldSize).fill(null);
    this.#lastHeard = new Array<number>(worldSize).fill(0);
    this.#left = new Array<boolean>(worldSize).fill(false);
    this.#nextStep = new Array<number>(worldSize).fill(1);
    const host = options.host ?? '127.0.0.1';
    // ws closes a connection whose frame is larger than this (code 1009) before buffering it
    const maxPayload = HEADER_BYTES + maxValues * 8 + 8192;
    this.#http = options.tls === undefined ? null : createHttpsServer({ cert: options.tls.cert, key: options.tls.key });
    this.#server = this.#http === null ? new WebSocketServer({ port: options.port, host, maxPayload }) : new WebSocketServer({ server: this.#http, maxPayload });
    this.#http?.listen(options.port, host);
    const listener = this.#http ?? this.#server;
    this.#listening = new Promise((resolve, reject) => {
      listener.once('listening', () => {
        const address = (this.#http ?? this.#server).address();
        resolve(typeof address === 'object' && address !== null ? address.port : options.port);
      });
      listener.once('error', (error: Error) => {
        reject(new NormkitError('backend', `Coordinator: cannot listen on ${host}:${options.port}: ${error.message}`));
      });
    });
    // an unhandled rejection would crash the process: the error reaches whoever awaits listening()
    this.#listening.catch(() => undefined);
    this.#server.on('connection', (socket) => {
      this.#accept(socket);
    });
    this.#joinTimer = setTimeout(() => {
      const missing = this.#sockets.flatMap((s, r) => (s === null ? [r] : []));
      if (missing.length > 0) this.#fail(`rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not join within ${timeoutMs} ms`);
    }, timeoutMs);
    this.#beat = setInterval(() => {
      this.#heartbeat();
    }, heartbeatMs);
  }

  /** The port it listens on, once listening. */
  listening(): Promise<number> {
    return this.#listening;
  }

  get failure(): string | null {
    return this.#failure;
  }

  #heartbeat(): void {
    const now = Date.now();
    // time this process spent blocked is not the ranks' silence
    if (now - this.#lastBeat > 2 * this.#options.heartbeatMs) this.#lastHeard.fill(now);
    this.#lastBeat = now;
    const beat = encodeFrame({ kind: Kind.heartbeat, step: 0, layer: NO_LAYER, world: this.worldSize, rank: 0 });
    this.#sockets.forEach((socket, r) => {
      if (socket === null || this.#left[r]) return;
      const silent = now - this.#lastHeard[r];
      if (silent > this.#options.timeoutMs) {
        this.#fail(`rank ${r} sent nothing for ${silent} ms (heartbeat every ${this.#options.heartbeatMs} ms, timeout ${this.#options.timeoutMs} ms): the rank or its host is gone`);
        return;
      }
      socket.send(beat);
    });
  }

  #accept(socket: WebSocket): void {
    let rank = -1;
    const refuse = (why: string): void => {
      // a connection that never joined: closed without touching the group
      socket.close(1008, why.slice(0, 120));
    };
    const hello = setTimeout(() => {
      refuse('no hello within the timeout');
    }, this.#options.timeoutMs);
    socket.on('message', (data, isBinary) => {
      if (!isBinary || !(data instanceof Buffer)) {
        if (rank === -1) refuse('text frames are not part of the protocol');
        else this.#fail(`rank ${rank} sent a text frame, which is not part of the protocol`);
        return;
      }
      let frame: Frame;
      try {
        frame = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), HEADER_BYTES + this.#options.maxValues * 8 + 8192);
        if (frame.world !== this.worldSize) throw new NormkitError('backend', `malformed frame: world ${frame.world}, the group's is ${this.worldSize}`);
        if (rank !== -1 && frame.rank !== rank) throw new NormkitError('backend', `malformed frame: rank ${frame.rank} on rank ${rank}'s connection`);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        if (rank === -1) refuse(why);
        else this.#fail(`rank ${rank} sent a frame that was refused: ${why}`);
        return;
      }
      if (rank === -1) {
        clearTimeout(hello);
        rank = this.#join(socket, frame);
        return;
      }
      this.#lastHeard[rank] = Date.now();
      this.#frame(rank, frame);
    });
    socket.on('close', (code, reason) => {
      clearTimeout(hello);
      if (rank === -1 || this.#left[rank] || this.#failure !== null) return;
      this.#fail(`rank ${rank} disconnected (code ${code}${reason.length > 0 ? `: ${reason.toString()}` : ''}): the process died or its connection dropped`);
    });
    socket.on('error', () => {
      // 'close' follows and says which rank
    });
  }

  /** A hello frame: the rank it claims, if the token matches and the rank is free; -1 (and closed) otherwise. */
  #join(socket: WebSocket, frame: Frame): number {
    const refuse = (why: string): number => {
      socket.close(1008, why);
      return -1;
    };
    if (frame.kind !== Kind.hello) return refuse(`expected a hello frame first, got ${kindName(frame.kind)}`);
    if (!timingSafeEqual(digest(frame.payload), this.#tokenDigest)) return refuse('wrong token');
    const { rank } = frame;
    if (rank >= this.worldSize) return refuse(`rank ${rank} is outside the group of ${this.worldSize}`);
    if (this.#sockets[rank] !== null) return refuse(`rank ${rank} has already joined`);
    if (this.#failure !== null) {
      socket.send(encodeText({ kind: Kind.error, step: 0, layer: NO_LAYER, world: this.worldSize, rank: 0 }, this.#failure));
      socket.close(1011, 'group failed');
      return -1;
    }
    this.#sockets[rank] = socket;
    this.#lastHeard[rank] = Date.now();
    if (this.#sockets.every((s) => s !== null)) {
      this.#ready = true;
      clearTimeout(this.#joinTimer);
      const ready = encodeFrame({ kind: Kind.ready, step: 0, layer: NO_LAYER, world: this.worldSize, rank: 0 });
      for (const s of this.#sockets) s.send(ready);
    }
    return rank;
  }

  #frame(rank: number, frame: Frame): void {
    switch (frame.kind) {
      case Kind.heartbeat:
        return;
      case Kind.error:
        this.#fail(`rank ${rank} failed: ${payloadText(frame)}`);
        return;
      case Kind.bye:
        this.#left[rank] = true;
        if (this.#left.every(Boolean)) void this.close();
        return;
      case Kind.reduce:
      case Kind.gather:
        this.#contribute(rank, frame);
        return;
      default:
        this.#fail(`rank ${rank} sent a ${kindName(frame.kind)} frame, which only the coordinator sends`);
    }
  }

  #contribute(rank: number, frame: Frame): void {
    if (this.#failure !== null) return;
    if (!this.#ready) {
      this.#fail(`rank ${rank} sent a collective before every rank had joined`);
      return;
    }
    if (frame.step !== this.#nextStep[rank]) {
      this.#fail(`rank ${rank} sent step ${frame.step}, expected step ${this.#nextStep[rank]}`);
      return;
    }
    this.#nextStep[rank]++;
    let values: Float64Array;
    try {
      values = payloadValues(frame);
    } catch (error) {
      this.#fail(`rank ${rank} sent a frame that was refused: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    let step = this.#steps.get(frame.step);
    if (step === undefined) {
      const at = frame.step;
      step = {
        kind: frame.kind,
        layer: frame.layer,
        length: values.length,
        first: rank,
        parts: new Array<Float64Array | null>(this.worldSize).fill(null),
        arrived: 0,
        timer: setTimeout(() => {
          const waiting = this.#steps.get(at);
          const missing = waiting?.parts.flatMap((p, r) => (p === null ? [r] : [])) ?? [];
          this.#fail(`rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not send step ${at} (${describeCall(frame.kind, frame.layer, values.length)}) within ${this.#options.timeoutMs} ms`);
        }, this.#options.timeoutMs),
      };
      this.#steps.set(frame.step, step);
    } else if (frame.kind !== step.kind || frame.layer !== step.layer || values.length !== step.length) {
      this.#fail(`rank ${rank} called ${describeCall(frame.kind, frame.layer, values.length)} at step ${frame.step}, rank ${step.first} ${describeCall(step.kind, step.layer, step.length)}`);
      return;
    }
    step.parts[rank] = values;
    step.arrived++;
    if (step.arrived < this.worldSize) return;
    clearTimeout(step.timer);
    this.#steps.delete(frame.step);
    const parts = step.parts.filter((p): p is Float64Array => p !== null);
    // all-reduce: the sum in rank order; all-gather: the values in rank order
    const result = new Float64Array(step.kind === Kind.reduce ? step.length : step.length * this.worldSize);
    if (step.kind === Kind.reduce) sumInRankOrder(result, parts);
    else parts.forEach((p, r) => { result.set(p, r * step.length); });
    const bytes = encodeValues({ kind: Kind.result, step: frame.step, layer: step.layer, world: this.worldSize, rank: 0 }, result);
    for (const s of this.#sockets) s?.send(bytes);
  }

  /** Fails the group: every connected rank gets `why` as its error, then every connection closes. */
  #fail(why: string): void {
    if (this.#failure !== null) return;
    this.#failure = why;
    clearTimeout(this.#joinTimer);
    for (const step of this.#steps.values()) clearTimeout(step.timer);
    this.#steps.clear();
    const error = encodeText({ kind: Kind.error, step: 0, layer: NO_LAYER, world: this.worldSize, rank: 0 }, why);
    for (const socket of this.#sockets) {
      if (socket === null) continue;
      socket.send(error);
      socket.close(1011, 'group failed');
    }
    void this.close();
  }

  /** Resolves when the coordinator has stopped (every rank left, the group failed, or close()). */
  closed(): Promise<void> {
    return this.#closedPromise;
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      clearInterval(this.#beat);
      clearTimeout(this.#joinTimer);
      for (const step of this.#steps.values()) clearTimeout(step.timer);
      for (const socket of this.#server.clients) socket.close(1001, 'coordinator closing');
      const done = (): void => {
        this.#markClosed();
        resolve();
      };
      this.#server.close(() => {
        if (this.#http === null) done();
        else this.#http.close(done);
      });
      // connections that do not finish their closing handshake promptly are cut
      setTimeout(() => {
        for (const socket of this.#server.clients) socket.terminate();
      }, 1000).unref();
    });
    return this.#closing;
  }
}
