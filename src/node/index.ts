/** normkit's Node.js-only additions: worker threads for the wasm backend. */
export { startWasmThreads, stopWasmThreads } from './wasm-threads.js';
