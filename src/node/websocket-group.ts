/**
 * Joining a WebSocket group from Node.js, as PyTorch users know it: rank, world size and the
 * coordinator's address from options or from the environment torchrun (and `normkit run`) sets —
 * RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT — and the token from NORMKIT_TOKEN. Rank 0 hosts the
 * coordinator in its own process, bound to 127.0.0.1 unless `bind` says otherwise; every rank (rank 0
 * included) then joins it over `ws`, through TLS when a certificate is given.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { NormkitError } from '../errors.js';
import { DEFAULT_TIMEOUT_MS } from '../nn/sync/communicator.js';
import { HEADER_BYTES } from '../nn/sync/frame.js';
import type { OpenTransport, WebSocketGroupOptions } from '../nn/sync/websocket.js';
import { DEFAULT_MAX_VALUES, WebSocketCommunicator } from '../nn/sync/websocket.js';
import { Coordinator } from './coordinator.js';

export interface JoinOptions extends Partial<WebSocketGroupOptions> {
  /** The coordinator's host (MASTER_ADDR; default 127.0.0.1). */
  readonly address?: string;
  /** The coordinator's port (MASTER_PORT). */
  readonly port?: number;
  /** Rank 0: the address its coordinator listens on (NORMKIT_BIND_ADDR; default 127.0.0.1, this host only). */
  readonly bind?: string;
  /** TLS: rank 0 serves with cert and key; every rank trusts `ca` (default: cert). PEM text. */
  readonly tls?: { readonly cert?: string | undefined; readonly key?: string | undefined; readonly ca?: string | undefined } | undefined;
}

export interface WebSocketGroup {
  readonly communicator: WebSocketCommunicator;
  /** Rank 0's coordinator (null on the other ranks). */
  readonly coordinator: Coordinator | null;
  /** Leaves the group (and, on rank 0, stops the coordinator once every rank has left or after a second). */
  close(): Promise<void>;
}

function fromEnv(name: string, given: number | undefined, who: string): number {
  if (given !== undefined) return given;
  const text = process.env[name];
  if (text === undefined || text === '') throw new NormkitError('option', `${who}: ${name} is not set (set it, or pass the option; \`normkit run\` and torchrun set it)`);
  const value = Number(text);
  if (!Number.isInteger(value)) throw new NormkitError('option', `${who}: ${name} must be an integer, got '${text}'`);
  return value;
}

/** Resolves once something accepts TCP connections at host:port, retrying until the deadline (rank 0 may start later). */
async function waitForPort(host: string, port: number, deadline: number, rank: number): Promise<void> {
  for (;;) {
    const error = await new Promise<Error | null>((resolve) => {
      const socket = connect({ host, port }, () => {
        socket.destroy();
        resolve(null);
      });
      socket.once('error', (e) => {
        socket.destroy();
        resolve(e);
      });
    });
    if (error === null) return;
    if (Date.now() >= deadline) throw new NormkitError('backend', `rank ${rank}: no coordinator at ${host}:${port} within the timeout (${error.message})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A `ws` client socket as the communicator's transport. */
function openWs(url: string, ca: string | undefined, maxPayload: number): OpenTransport {
  return (events) => {
    const socket = new WebSocket(url, { ca, maxPayload });
    let lastError = '';
    socket.on('open', () => {
      events.open();
    });
    socket.on('message', (data, isBinary) => {
      // a text frame is not part of the protocol: an empty message fails the header check
      const bytes = isBinary && Buffer.isBuffer(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(0);
      events.message(bytes);
    });
    socket.on('error', (error) => {
      lastError = error.message;
    });
    socket.on('close', (code, reason) => {
      events.closed(code, reason.length > 0 ? reason.toString() : lastError);
    });
    return {
      send: (bytes) => {
        socket.send(bytes);
      },
      close: (code, reason) => {
        socket.close(code, reason);
      },
    };
  };
}

/** Joins (and on rank 0 first hosts) the WebSocket group described by `options` and the environment. */
export async function joinWebSocketGroup(options: JoinOptions = {}): Promise<WebSocketGroup> {
  const who = 'joinWebSocketGroup';
  const rank = fromEnv('RANK', options.rank, who);
  const worldSize = fromEnv('WORLD_SIZE', options.worldSize, who);
  const port = fromEnv('MASTER_PORT', options.port, who);
  const address = options.address ?? process.env.MASTER_ADDR ?? '127.0.0.1';
  const token = options.token ?? process.env.NORMKIT_TOKEN;
  if (token === undefined) throw new NormkitError('option', `${who}: no token: pass token or set NORMKIT_TOKEN (\`normkit run\` sets a random one)`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const group: WebSocketGroupOptions = { rank, worldSize, token, timeoutMs, heartbeatMs: options.heartbeatMs, maxValues: options.maxValues };
  const tls: JoinOptions['tls'] = options.tls ?? (process.env.NORMKIT_TLS_CERT === undefined ? undefined : { cert: readFileSync(process.env.NORMKIT_TLS_CERT, 'utf8'), key: process.env.NORMKIT_TLS_KEY === undefined ? undefined : readFileSync(process.env.NORMKIT_TLS_KEY, 'utf8') });
  let coordinator: Coordinator | null = null;
  if (rank === 0) {
    const { cert, key } = tls ?? {};
    if ((cert === undefined) !== (key === undefined)) throw new NormkitError('option', `${who}: rank 0 serves TLS with both cert and key; got only ${cert === undefined ? 'key' : 'cert'}`);
    coordinator = new Coordinator({ ...group, port, host: options.bind ?? process.env.NORMKIT_BIND_ADDR ?? '127.0.0.1', tls: cert === undefined || key === undefined ? undefined : { cert, key } });
    await coordinator.listening();
  }
  try {
    await waitForPort(address, port, Date.now() + timeoutMs, rank);
    const scheme = tls === undefined ? 'ws' : 'wss';
    const host = address.includes(':') ? `[${address}]` : address;
    const maxPayload = HEADER_BYTES + worldSize * (options.maxValues ?? DEFAULT_MAX_VALUES) * 8;
    const communicator = await WebSocketCommunicator.connect(group, openWs(`${scheme}://${host}:${port}`, tls?.ca ?? tls?.cert, maxPayload));
    return {
      communicator,
      coordinator,
      async close(): Promise<void> {
        communicator.close();
        if (coordinator === null) return;
        // the coordinator stops when every rank has said bye; a rank that never does is cut after a second
        await Promise.race([coordinator.closed(), new Promise((resolve) => setTimeout(resolve, 1000))]);
        await coordinator.close();
      },
    };
  } catch (error) {
    await coordinator?.close();
    throw error;
  }
}
