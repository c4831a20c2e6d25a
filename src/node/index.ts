/** normkit's Node.js-only additions: worker threads for the wasm backend, and the webgpu backend on Dawn. */
// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- the declarations name the platform types file; an import would be dropped from them
/// <reference path="../../types/platform.d.ts" preserve="true" />
export { startWasmThreads, stopWasmThreads } from './wasm-threads.js';
export { startWebGpu, stopWebGpu } from './webgpu-threads.js';
export { createNodeWebGpu, dawnGpu } from './dawn.js';
export { joinWebSocketGroup } from './websocket-group.js';
export type { JoinOptions, WebSocketGroup } from './websocket-group.js';
export { Coordinator } from './coordinator.js';
export type { CoordinatorOptions } from './coordinator.js';
