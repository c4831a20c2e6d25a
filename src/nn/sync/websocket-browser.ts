/** A browser page (or any runtime with the standard WebSocket) as one rank of a WebSocket group. */
import { NormkitError } from '../../errors.js';
import type { OpenTransport, WebSocketGroupOptions } from './websocket.js';
import { WebSocketCommunicator } from './websocket.js';

/** The standard WebSocket as the communicator's transport (binary frames as ArrayBuffers). */
function openStandard(url: string): OpenTransport {
  return (events) => {
    const socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      events.open();
    };
    socket.onmessage = (event: MessageEvent<unknown>) => {
      // a text frame is not part of the protocol: an empty message fails the header check
      events.message(event.data instanceof ArrayBuffer ? new Uint8Array(event.data) : new Uint8Array(0));
    };
    socket.onclose = (event) => {
      events.closed(event.code, event.reason);
    };
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

/** Joins the group whose coordinator listens at `url` (ws:// or wss://) as `options.rank`. */
export function connectWebSocketRank(url: string, options: WebSocketGroupOptions): Promise<WebSocketCommunicator> {
  if (typeof WebSocket !== 'function') throw new NormkitError('backend', 'connectWebSocketRank: this runtime has no standard WebSocket (in Node.js use joinWebSocketGroup from normkit/node)');
  if (typeof url !== 'string' || !/^wss?:\/\//.test(url)) throw new NormkitError('option', `connectWebSocketRank: expected a ws:// or wss:// URL, got ${typeof url === 'string' ? url : typeof url}`);
  return WebSocketCommunicator.connect(options, openStandard(url));
}
