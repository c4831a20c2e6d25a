/** normkit's Node.js-only additions: worker threads for the wasm backend, and the webgpu backend on Dawn. */
export { startWasmThreads, stopWasmThreads } from './wasm-threads.js';
export { startWebGpu, stopWebGpu } from './webgpu-threads.js';
export { createNodeWebGpu, dawnGpu } from './dawn.js';
